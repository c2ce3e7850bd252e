"""The Communicator: the message API agents and the orchestrator use on the bus.

Design note
-----------
Agents reach each other directly: ``send_message`` resolves the recipient id to a
slot through the shared :class:`~engine._shm.directory.Directory` (no round trip),
attaches the recipient's mailbox once (cached per slot *generation*, so a slot reused
by a new agent gets a fresh mailbox), and writes the encoded message into the ring
that belongs to this sender.  Nothing passes through the orchestrator on the data
path.  Messages are ``msgspec`` structs encoded as MessagePack.

Request/reply uses a correlation id.  In the orchestrator (asyncio) a reply
resolves a future; inside an agent process the runtime supplies a *pump* that keeps
receiving (stashing other frames for later, unacknowledged) until the reply arrives.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgspec

from engine._runtime.protocol import Kind
from engine.channels import Lane
from engine.errors import ChannelError, MessageTooLarge, UnknownRecipient

if TYPE_CHECKING:  # pragma: no cover
    from engine._shm.directory import Directory
    from engine.channels import ChannelStatistics
    from engine._shm.mailbox import Mailbox, Sender
    from engine.channels import Frame

ORCHESTRATOR_ID = "orchestrator"
ORCHESTRATOR_SLOT = 0

_PRIORITY_LANES = {"high": Lane.HIGH, "normal": Lane.NORMAL, "low": Lane.LOW}
_LANE_NAMES = {Lane.HIGH: "high", Lane.NORMAL: "normal", Lane.LOW: "low", Lane.CONTROL: "control"}


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A message on the bus.

    Attributes:
        recipient_id: the agent id to deliver to (``"orchestrator"`` for the orchestrator).
        message_type: what the message is about (free text, e.g. ``"execute_workload"``).
        payload: any msgspec-serialisable value (dicts, lists, numbers, str, bytes...).
        priority: ``"high"``, ``"normal"`` or ``"low"``; higher lanes are drained first.
        sender_id: filled in by the sender's communicator.
        msg_id: unique per sender; filled in on send.  Use it to drop duplicates.
        correlation_id: for replies, the ``msg_id`` of the request.
        expects_reply: set by ``request``; the handler's return value is sent back.
        redelivered: set on receipt when the message was delivered before to an
            incarnation of the recipient that crashed before finishing it.
        sent_ns: monotonic send time (ns), set on receipt from the frame header.
    """

    recipient_id: str
    message_type: str
    payload: Any = None
    priority: str = "normal"
    sender_id: str = ""
    msg_id: int = 0
    correlation_id: int = 0
    expects_reply: bool = False
    redelivered: bool = False
    sent_ns: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode_message(message: Message) -> bytes:
    """MessagePack bytes for ``message``."""
    return _encoder.encode(message)


def decode_message(frame: "Frame") -> Message:
    """Decode a DATA/REPLY frame into a :class:`Message` with receipt fields filled."""
    try:
        msg = _decoder.decode(frame.payload)
    except UnicodeDecodeError as exc:  # issue 8 (fuzzing): msgspec raises this for bad UTF-8
        raise msgspec.DecodeError(f"invalid UTF-8 in a message string: {exc}") from None
    msg.redelivered = bool(frame.redelivered)
    msg.sent_ns = frame.send_ns
    return msg


def lane_for(priority: str | int | Lane) -> Lane:
    """The bus lane for a message priority (``"high"``/``"normal"``/``"low"`` or a Lane)."""
    if isinstance(priority, Lane):
        return priority
    if isinstance(priority, int):
        return Lane(priority)
    try:
        return _PRIORITY_LANES[priority]
    except KeyError:
        raise ValueError(f"priority {priority!r} is not one of high, normal, low") from None


class DuplicateFilter:
    """Remembers the last ``capacity`` (sender, msg_id) pairs to drop redelivered duplicates."""

    def __init__(self, capacity: int = 65536) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.dropped = 0

    def seen(self, message: Message) -> bool:
        """True if this message was seen before (and counts it); else remember it."""
        key = (message.sender_id, message.msg_id)
        if key in self._seen:
            self._seen.move_to_end(key)
            self.dropped += 1
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def state(self) -> list[list[Any]]:
        """The remembered keys, oldest first (for checkpoints)."""
        return [[s, m] for s, m in self._seen]

    def load(self, keys: Iterable[Iterable[Any]]) -> None:
        """Restore remembered keys from :meth:`state`."""
        for sender, msg_id in keys:
            self._seen[(str(sender), int(msg_id))] = None


def summarize(stats: "ChannelStatistics") -> dict[str, Any]:
    """The user-facing numbers of one channel (or a sum of channels)."""

    def pct(q: float) -> float | None:
        value = stats.latency_percentile_ns(q)
        return None if value is None else round(value / 1000.0, 3)

    return {
        "sent": stats.sent, "received": stats.received, "bytes": stats.bytes_sent,
        "full_events": stats.full_events, "rejected": stats.rejected,
        "redeliveries": stats.redelivered, "queued_bytes": stats.queued_bytes,
        "latency_p50_us": pct(0.5), "latency_p99_us": pct(0.99), "latency_p999_us": pct(0.999),
    }  # fmt: skip


class Communicator:
    """One process's endpoint on the bus (an agent's, or the orchestrator's)."""

    def __init__(
        self,
        *,
        agent_id: str,
        slot: int,
        directory: "Directory",
        mailbox_name: Callable[[int, int], str],
        send_timeout: float = 1.0,
        request_timeout: float = 5.0,
        sealer: Any = None,
        send_guard: Any = None,
    ) -> None:
        self.agent_id = agent_id
        # security (issue 8): ``sealer`` (engine.security.FrameSealer) tags or encrypts
        # every outgoing payload; ``send_guard`` (engine.security.SendGuard) enforces
        # security.acl.send on data messages.  Both None when not configured.
        self.sealer = sealer
        self.send_guard = send_guard
        self.slot = slot
        self.directory = directory
        self._mailbox_name = mailbox_name
        self.send_timeout = send_timeout
        self.request_timeout = request_timeout
        self._senders: dict[int, tuple[int, "Mailbox", "Sender"]] = {}
        self._nonce = int.from_bytes(os.urandom(3), "little") << 40
        self._counter = 0
        self._lock = threading.Lock()
        self.sent = 0
        self.sent_bytes = 0
        self._reply_waiter: Callable[[int, float], Any] | None = None
        self._orchestrator: tuple["Mailbox", "Sender"] | None = None

    # --- plumbing -------------------------------------------------------------------

    def next_msg_id(self) -> int:
        """A fresh message id, unique for this sender across restarts (random high bits)."""
        self._counter = (self._counter + 1) & 0xFF_FFFF_FFFF
        return self._nonce | self._counter

    def _sender_for_slot(self, slot: int, generation: int) -> "Sender":
        from engine._shm.mailbox import Mailbox

        cached = self._senders.get(slot)
        if cached is not None and cached[0] == generation:
            return cached[2]
        if cached is not None:
            cached[1].close()
        mailbox = Mailbox.attach(self._mailbox_name(slot, generation))
        sender = mailbox.sender(self.slot)
        self._senders[slot] = (generation, mailbox, sender)
        return sender

    def _resolve(self, recipient_id: str) -> tuple[int, "Sender"]:
        if recipient_id == ORCHESTRATOR_ID:
            return ORCHESTRATOR_SLOT, self._sender_for_slot(ORCHESTRATOR_SLOT, 0)
        entry = self.directory.lookup(recipient_id)
        if entry is None:
            raise UnknownRecipient(f"no live agent {recipient_id!r} to deliver to")
        return entry.slot, self._sender_for_slot(entry.slot, entry.generation)

    def _type_of(self, recipient_id: str) -> str:
        """The agent type of a recipient (``"orchestrator"`` for the orchestrator)."""
        if recipient_id == ORCHESTRATOR_ID:
            return ORCHESTRATOR_ID
        entry = self.directory.lookup(recipient_id)
        return entry.agent_type if entry is not None else ""

    def send_frame(
        self,
        slot: int,
        generation: int,
        kind: Kind,
        payload: bytes,
        *,
        lane: Lane = Lane.NORMAL,
        msg_id: int = 0,
        correlation_id: int = 0,
        timeout: float | None = None,
        wake: bool = True,
    ) -> None:
        """Send raw bytes of a given kind to a slot's mailbox (runtime internals use this).

        ``wake=False`` sends quietly (see :meth:`engine._shm.mailbox.Sender.send`): the
        recipient is not woken and sees the frame at its next wake-up, at most its
        receiver's ``sleep_s`` later.  Only for data nobody waits for.
        """
        sender = self._sender_for_slot(slot, generation)
        if self.sealer is not None:  # security (issue 8)
            payload = self.sealer.seal(payload, int(kind), self.slot, slot, int(lane), msg_id, correlation_id)
        sender.send(
            payload, msg_type=int(kind), lane=lane, recipient=slot, msg_id=msg_id,
            correlation_id=correlation_id,
            timeout=self.send_timeout if timeout is None else timeout, wake=wake,
        )  # fmt: skip

    def forget_slot(self, slot: int) -> None:
        """Drop the cached mailbox of ``slot`` (its agent was destroyed)."""
        cached = self._senders.pop(slot, None)
        if cached is not None:
            cached[1].close()

    # --- public API -------------------------------------------------------------------

    def send_message(self, message: Message | None = None, /, *, wake: bool = True, timeout: float | None = None,
                     **fields: Any) -> int:
        """Send a message; returns its ``msg_id``.

        Pass a :class:`Message`, or its fields as keywords
        (``send_message(recipient_id="compute-1", message_type="ping", payload=...)``).
        ``timeout`` is how long to wait for room in the recipient's lane (default: the
        communicator's ``send_timeout``; ``0``: raise ``ChannelFull`` at once, for a
        caller on an event loop that must never stall).
        ``wake=False`` sends quietly: the recipient is not woken for this message and
        sees it at its next wake-up, at most its receiver's ``sleep_s`` later (see
        :meth:`engine._shm.mailbox.Sender.send`); only for values nobody waits for.

        Raises:
            UnknownRecipient: no live agent has that id.
            MessageTooLarge: the encoded message cannot fit in a lane.
            ChannelFull: the recipient's lane stayed full for ``send_timeout`` seconds.
            ChannelClosed: the recipient's mailbox was closed.
        """
        msg = message if message is not None else Message(**fields)
        return self._send(msg, kind=Kind.DATA, wake=wake, timeout=timeout)

    def _send(self, msg: Message, *, kind: Kind, timeout: float | None = None, wake: bool = True) -> int:
        """Encode, seal and send ``msg``; returns its ``msg_id``.

        ``wake=False`` sends quietly (no doorbell; the recipient sees the message at
        its next wake-up, see :meth:`engine._shm.mailbox.Sender.send`).
        """
        lane = lane_for(msg.priority)
        msg.sender_id = self.agent_id
        if not msg.msg_id:
            msg.msg_id = self.next_msg_id()
        raw = encode_message(msg)
        with self._lock:
            slot, sender = self._resolve(msg.recipient_id)
            if self.send_guard is not None and kind == Kind.DATA:  # security (issue 8): acl.send
                self.send_guard.check(msg.recipient_id, self._type_of(msg.recipient_id))
            if self.sealer is not None:  # security (issue 8): MAC or AEAD over header + payload
                raw = self.sealer.seal(raw, int(kind), self.slot, slot, int(lane), msg.msg_id, msg.correlation_id)
            try:
                sender.send(
                    raw, msg_type=int(kind), lane=lane, recipient=slot, msg_id=msg.msg_id,
                    correlation_id=msg.correlation_id,
                    timeout=self.send_timeout if timeout is None else timeout, wake=wake,
                )  # fmt: skip
            except MessageTooLarge as exc:
                raise MessageTooLarge(f"message {msg.message_type!r} to {msg.recipient_id!r}: {exc}") from exc
        self.sent += 1
        self.sent_bytes += len(raw)
        return msg.msg_id

    def broadcast_message(
        self, message: Message | None = None, /, *, agent_type: str | None = None, **fields: Any
    ) -> int:
        """Send a copy to every live agent (or every agent of ``agent_type``), except the sender.

        Returns the number of agents it was sent to.  A recipient whose lane is full
        does not stop the others; the first error is raised after all were tried.
        """
        template = message if message is not None else Message(recipient_id="*", **fields)
        count = 0
        first_error: ChannelError | None = None
        for entry in self.directory.live_entries():
            if entry.agent_id == self.agent_id:
                continue
            if agent_type is not None and entry.agent_type != agent_type:
                continue
            copy = msgspec.structs.replace(template, recipient_id=entry.agent_id, msg_id=0)
            try:
                self._send(copy, kind=Kind.DATA)
                count += 1
            except ChannelError as exc:
                first_error = first_error or exc
        if first_error is not None and count == 0:
            raise first_error
        return count

    def set_reply_waiter(self, waiter: Callable[[int, float], Any]) -> None:
        """Install how this process waits for a reply (runtime internals)."""
        self._reply_waiter = waiter

    def _request(self, recipient_id: str, message_type: str, payload: Any, priority: str,
                 timeout: float | None) -> Any:
        """Send a request; return what the installed waiter returns (a reply or an awaitable)."""
        if self._reply_waiter is None:
            raise RuntimeError("this communicator cannot wait for replies (no agent runtime or orchestrator)")
        msg = Message(
            recipient_id=recipient_id, message_type=message_type, payload=payload,
            priority=priority, expects_reply=True,
        )  # fmt: skip
        msg_id = self._send(msg, kind=Kind.DATA)
        return self._reply_waiter(msg_id, self.request_timeout if timeout is None else timeout)

    def request_sync(self, recipient_id: str, message_type: str, payload: Any = None, *,
                     priority: str = "normal", timeout: float | None = None) -> Message:
        """Send a request and block until its reply (inside an agent process).

        Raises:
            RequestTimeout: no reply within ``timeout`` (default ``request_timeout``).
        """
        result = self._request(recipient_id, message_type, payload, priority, timeout)
        if hasattr(result, "__await__"):
            result.close()  # the orchestrator's waiter is a coroutine: it needs 'await request(...)'
            raise RuntimeError("request_sync only works inside an agent process; use 'await request(...)'")
        return result

    async def request(self, recipient_id: str, message_type: str, payload: Any = None, *,
                      priority: str = "normal", timeout: float | None = None) -> Message:
        """Send a request and wait for the reply.

        Raises:
            RequestTimeout: no reply within ``timeout`` (default ``request_timeout``).
        """
        result = self._request(recipient_id, message_type, payload, priority, timeout)
        if hasattr(result, "__await__"):
            return await result
        return result

    def reply(self, request: Message, payload: Any = None) -> int:
        """Answer ``request`` with ``payload`` (sent on the request's lane)."""
        msg = Message(
            recipient_id=request.sender_id, message_type=request.message_type, payload=payload,
            priority=request.priority, correlation_id=request.msg_id,
        )  # fmt: skip
        return self._send(msg, kind=Kind.REPLY)

    def attach_inbox(self, inbox: "Mailbox") -> None:
        """Let :meth:`get_statistics` include the channels into this endpoint's own inbox."""
        self._inbox = inbox

    def _name_of(self, slot: int) -> str:
        if slot == ORCHESTRATOR_SLOT:
            return ORCHESTRATOR_ID
        entry = self.directory.lookup_slot(slot)
        return entry.agent_id if entry is not None else f"slot-{slot}"

    def get_statistics(self) -> dict[str, Any]:
        """Per-channel and total statistics of this endpoint's channels.

        ``channels`` maps ``"sender->recipient"`` to sent, received, bytes, full
        events, rejected frames, redeliveries, queued bytes and latency p50/p99/p99.9
        (µs, from the send timestamps, over the channel's lifetime); ``total`` sums
        them.  Outbound channels are those this endpoint has used; inbound ones come
        from its own inbox.  Read from shared memory: no message round trip.
        """
        from engine.channels import ChannelStatistics

        groups: dict[str, list[ChannelStatistics]] = {}
        for slot, (_gen, mailbox, _sender) in list(self._senders.items()):
            mine = [c for (prod, _lane), c in mailbox.statistics().channels.items() if prod == self.slot]
            if mine:
                groups[f"{self.agent_id}->{self._name_of(slot)}"] = mine
        inbox = getattr(self, "_inbox", None)
        if inbox is not None:
            for (prod, _lane), c in inbox.statistics().channels.items():
                groups.setdefault(f"{self._name_of(prod)}->{self.agent_id}", []).append(c)
        combined = {name: ChannelStatistics.combine(items) for name, items in groups.items()}
        return {
            "channels": {name: summarize(stats) for name, stats in sorted(combined.items())},
            "total": summarize(ChannelStatistics.combine(list(combined.values()))),
        }

    def close(self) -> None:
        """Detach every cached mailbox."""
        for _gen, mailbox, _sender in self._senders.values():
            mailbox.close()
        self._senders.clear()


def monotonic_ns() -> int:
    """The clock used for message timestamps (the same in every process)."""
    return time.monotonic_ns()
