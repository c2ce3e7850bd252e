"""The public face of the shared-memory bus: endpoints, frames, statistics, errors.

Lifecycle (modelled on trio's memory channels)
-----------------------------------------------
- The orchestrator process creates one :class:`Mailbox` per consumer
  (``Mailbox.create(name, producers=..., lane_bytes=...)``), and is the one that
  unlinks it.  Every other process ``Mailbox.attach(name)``\\ es and only closes.
- ``mailbox.sender(k)`` is producer ``k``'s :class:`Sender` (0 = orchestrator,
  ``k`` = agent slot ``k``); ``mailbox.receiver()`` is the single :class:`Receiver`.
- ``Sender.send`` blocks up to its timeout for room, then raises
  :class:`ChannelFull`; ``send_nowait`` raises at once; :class:`MessageTooLarge`
  if a lane can never hold the payload; :class:`ChannelClosed` after
  ``mailbox.mark_closed()`` or on a closed endpoint.
- ``Receiver.receive`` / ``receive_nowait`` (:class:`ChannelEmpty`) /
  ``receive_batch`` return :class:`Frame`\\ s, CONTROL lane first; ``ack(frame)``
  frees the frame's bytes.  A frame not acknowledged when its consumer dies is
  delivered again to the next receiver with ``redelivered=True``.
- Corrupt frames never raise: they are counted, skipped and reported by
  ``Receiver.take_faults()`` as :class:`ChannelFault`.
- ``mailbox.statistics()`` is a frozen :class:`MailboxStatistics`; readable from
  any process without locks.

Large arrays travel out of band: :func:`share_array` copies a numpy array once
into its own segment and returns a small :class:`ArrayHandle` to send;
:func:`open_array` maps it in the receiver.  The creator unlinks it with
:func:`unlink_array` when every reader is done; anything left behind is removed by
the orchestrator's prefix sweep at shutdown (``segments.unlink_all(prefix)``), so
name arrays with the swarm prefix.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from engine._shm.mailbox import (
    DEFAULT,
    DEFAULT_SEND_TIMEOUT_S,
    DEFAULT_SLEEP_S,
    DEFAULT_SPIN_US,
    Mailbox,
    MailboxLayoutError,
    MailboxStatistics,
    Receiver,
    Sender,
)
from engine._shm.ring import (
    ChannelFault,
    ChannelStatistics,
    Frame,
    FrameBatch,
    Lane,
    bucket_bounds,
    latency_bucket,
    percentile_from_histogram,
)
from engine._shm.segments import SHM_DIR, Segment
from engine.errors import (
    ChannelClosed,
    ChannelEmpty,
    ChannelError,
    ChannelFull,
    FrameCorrupt,
    MessageTooLarge,
    PeerGone,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


__all__ = [
    "DEFAULT",
    "DEFAULT_SEND_TIMEOUT_S",
    "DEFAULT_SLEEP_S",
    "DEFAULT_SPIN_US",
    "ArrayHandle",
    "ChannelClosed",
    "ChannelEmpty",
    "ChannelError",
    "ChannelFault",
    "ChannelFull",
    "ChannelStatistics",
    "Frame",
    "FrameBatch",
    "FrameCorrupt",
    "Lane",
    "Mailbox",
    "MailboxLayoutError",
    "MailboxStatistics",
    "MessageTooLarge",
    "PeerGone",
    "Receiver",
    "Sender",
    "bucket_bounds",
    "latency_bucket",
    "open_array",
    "percentile_from_histogram",
    "share_array",
    "unlink_array",
]


# --- large arrays ---------------------------------------------------------------------------


class ArrayHandle(msgspec.Struct, frozen=True):
    """Where a shared numpy array lives; small enough to send in a message.

    Attributes:
        segment: shared-memory segment name.
        shape: array shape.
        dtype: numpy dtype string (``arr.dtype.str``, e.g. ``"<f8"``).
        offset: byte offset of the data in the segment.
    """

    segment: str
    shape: tuple[int, ...]
    dtype: str
    offset: int = 0


def share_array(arr: Any, name_prefix: str) -> ArrayHandle:
    """Copy ``arr`` once into a new segment named ``<name_prefix>-arr-<token>``.

    The caller owns the segment: call :func:`unlink_array` when every reader has
    opened (or finished with) it.  Use the swarm prefix so the orchestrator's
    sweep removes it if the owner dies.

    Raises:
        ValueError: object or structured dtypes (they cannot be shared by bytes).
    """
    import numpy as np

    a = np.asarray(arr)
    if a.dtype.hasobject or a.dtype.fields is not None:
        raise ValueError(f"cannot share an array of dtype {a.dtype}: only plain numeric dtypes")
    a = np.ascontiguousarray(a)
    name = f"{name_prefix}-arr-{secrets.token_hex(8)}"
    seg = Segment.create(name, max(a.nbytes, 1))
    try:
        view = seg.buf[: a.nbytes]
        dst = np.ndarray(a.shape, dtype=a.dtype, buffer=view)
        dst[...] = a
        del dst
        view.release()
    except BaseException:
        seg.close()
        seg.unlink()
        raise
    seg.close()
    return ArrayHandle(segment=name, shape=tuple(int(x) for x in a.shape), dtype=a.dtype.str)


def open_array(handle: ArrayHandle, *, writable: bool = False) -> tuple[np.ndarray, Callable[[], None]]:
    """Map a shared array; returns ``(view, closer)``.

    The view is read-only unless ``writable``.  Call ``closer()`` when done: it
    drops this process's handle, and the mapping goes away once the last view
    object is garbage collected (so a stale view can never point at unmapped
    memory).

    Raises:
        FileNotFoundError: the segment is gone.
        ValueError: the segment is smaller than the handle says.
    """
    import numpy as np

    dtype = np.dtype(handle.dtype)
    count = 1
    for d in handle.shape:
        count *= d
    nbytes = count * dtype.itemsize
    seg = Segment.attach(handle.segment)
    try:
        if handle.offset < 0 or handle.offset + nbytes > seg.size:
            raise ValueError(
                f"array segment {handle.segment} has {seg.size} bytes, handle needs "
                f"{handle.offset + nbytes}"
            )
        view = seg.buf[handle.offset : handle.offset + nbytes]
        arr = np.ndarray(handle.shape, dtype=dtype, buffer=view)  # keeps `view` alive
    except BaseException:
        seg.close()
        raise
    if not writable:
        arr.flags.writeable = False
    return arr, seg.close


def unlink_array(handle: ArrayHandle) -> None:
    """Remove a shared array's segment name (the creator's job; idempotent).

    Processes that have it open keep their mapping until they close it.
    """
    try:
        (SHM_DIR / handle.segment).unlink()
    except FileNotFoundError:
        pass
