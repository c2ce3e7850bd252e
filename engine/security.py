"""Bus security: the per-swarm secret, frame authentication and encryption, access control.

What this module gives the rest of the engine (see ``docs/SECURITY.md`` for the
threat model in plain words):

* :func:`new_secret` -- 32 random bytes (``os.urandom``) created by the orchestrator
  when the swarm starts.  It travels to each agent inside its launch parameters
  (pickled over the forkserver's Unix socket) and is never written to disk.
* :class:`FrameSealer` -- seals and opens the payload of every frame on the bus.
  With ``security.authenticate`` a 16-byte keyed BLAKE2b tag is appended; it covers
  the frame header (message kind, sender slot, recipient slot, lane, message id,
  correlation id) and the payload, so a frame with a forged sender slot, a moved
  header or an altered payload fails.  With ``security.encrypt`` the payload is
  encrypted with an AEAD cipher (AES-256-GCM where the CPU has AES instructions,
  else ChaCha20-Poly1305, from the ``cryptography`` package); the header is its
  associated data, so encryption authenticates too.
* :class:`AuthenticatedReceiver` -- wraps a mailbox ``Receiver``: every frame is
  opened before it is handed out; one that fails is acknowledged (dropped), counted
  in :attr:`AuthenticatedReceiver.rejected` and reported as a
  :class:`~engine.channels.ChannelFault` (so the runtime turns it into a
  ``channel_fault`` event), never delivered.
* :class:`SendGuard` -- the ``security.acl.send`` check a Communicator makes before
  it sends a data message; a refusal raises :class:`SendDenied` in the sender and is
  reported (rate-limited) so that it lands in the audit log.
* :func:`control_authorizer` -- the ``security.acl.control`` rules as an orchestrator
  authorizer (``Orchestrator.add_authorizer``): actions agents ask for (pause,
  throttle, destroy...) are refused with ``AccessDenied`` and audited.

Keys: the secret is never used directly; a MAC key and a cipher key are derived
from it with keyed BLAKE2b and distinct personalisation strings.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.errors import AccessDenied, ChannelEmpty, ChannelError

if TYPE_CHECKING:  # pragma: no cover
    from engine.config import AclConfig, SwarmConfig

__all__ = [
    "NONCE_BYTES",
    "SECRET_BYTES",
    "TAG_BYTES",
    "AuthenticatedReceiver",
    "FrameSealer",
    "SendDenied",
    "SendGuard",
    "control_authorizer",
    "new_secret",
    "sealer_for",
    "wrap_receiver",
]

SECRET_BYTES = 32
TAG_BYTES = 16  # MAC tag (keyed BLAKE2b, truncated) and AEAD tag alike
NONCE_BYTES = 12
#: The frame header fields a tag covers: msg_type, sender, recipient, lane, msg_id, correlation_id.
_AAD = struct.Struct("<HHHBQQ")
_aad_pack = _AAD.pack
_compare_digest = hmac.compare_digest  # constant time
log = logging.getLogger("engine.security")


class SendDenied(AccessDenied, ChannelError):
    """``security.acl.send`` forbids this sender type to message that recipient type.

    An ``AccessDenied`` (it is a refusal) and a ``ChannelError`` (the message was not
    delivered), so code that already handles undeliverable messages handles it too.
    """


def new_secret() -> bytes:
    """A fresh per-swarm secret: ``SECRET_BYTES`` bytes from ``os.urandom``."""
    return os.urandom(SECRET_BYTES)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hashlib.blake2b(b"", key=secret, person=purpose[:16], digest_size=32).digest()


def _cpu_has_aes() -> bool:
    try:
        with open("/proc/cpuinfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"flags"):
                    return b" aes" in line
    except OSError:
        pass
    return False


class FrameSealer:
    """Seals (tags or encrypts) and opens frame payloads with keys derived from the secret.

    One instance per process (it is not shared between threads without the lock it
    takes around the nonce counter).  ``overhead`` is the number of bytes sealing
    adds to a payload: 16 for a MAC, 28 (nonce + tag) for encryption.
    """

    def __init__(self, secret: bytes, *, encrypt: bool = False, cipher: str = "auto") -> None:
        if len(secret) < 16:
            raise ValueError("the swarm secret must be at least 16 bytes")
        self.encrypt = bool(encrypt)
        self._mac = hashlib.blake2b(key=_derive(secret, b"swarm-frame-mac"), digest_size=TAG_BYTES)
        self.cipher_name = ""
        self._aead: Any = None
        self.overhead = TAG_BYTES
        if self.encrypt:
            try:
                from cryptography.exceptions import InvalidTag
                from cryptography.hazmat.primitives.ciphers.aead import (
                    AESGCM,
                    ChaCha20Poly1305,
                )
            except ImportError as exc:  # pragma: no cover - cryptography is a dependency
                raise RuntimeError("security.encrypt needs the 'cryptography' package "
                                   f"(pip install cryptography): {exc}") from None
            key = _derive(secret, b"swarm-frame-enc")
            if cipher == "auto":
                cipher = "aes-256-gcm" if _cpu_has_aes() else "chacha20-poly1305"
            if cipher == "aes-256-gcm":
                self._aead = AESGCM(key)
            elif cipher == "chacha20-poly1305":
                self._aead = ChaCha20Poly1305(key)
            else:
                raise ValueError(f"unknown cipher {cipher!r}; choose aes-256-gcm or chacha20-poly1305")
            self.cipher_name = cipher
            self._invalid_tag = InvalidTag
            self.overhead = NONCE_BYTES + TAG_BYTES
            self._nonce_lock = threading.Lock()
            self._new_nonce_prefix()
        self.sealed = 0
        self.opened = 0
        self.failed = 0

    def _new_nonce_prefix(self) -> None:
        # 8 random bytes per process (and per 2**32 frames) + a 4-byte counter: a nonce
        # never repeats within a process, and two processes share a prefix with
        # probability ~ n**2 / 2**65.
        self._prefix = os.urandom(8)
        self._counter = 0

    def _nonce(self) -> bytes:
        with self._nonce_lock:
            c = self._counter
            if c >= 0xFFFFFFFF:
                self._new_nonce_prefix()
                c = 0
            self._counter = c + 1
            return self._prefix + c.to_bytes(4, "little")

    @property
    def mode(self) -> str:
        """``"mac"`` or ``"aead:<cipher>"``."""
        return f"aead:{self.cipher_name}" if self.encrypt else "mac:blake2b-128"

    def seal(self, payload: bytes, msg_type: int, sender: int, recipient: int, lane: int,
             msg_id: int = 0, correlation_id: int = 0) -> bytes:
        """The bytes to put on the bus for ``payload`` with this header."""
        aad = _aad_pack(msg_type, sender, recipient, lane, msg_id, correlation_id)
        self.sealed += 1
        if type(payload) is not bytes:
            payload = bytes(payload)
        if self._aead is not None:
            nonce = self._nonce()
            return nonce + self._aead.encrypt(nonce, payload, aad)
        h = self._mac.copy()
        h.update(aad)
        h.update(payload)
        return payload + h.digest()

    def open(self, sealed: bytes, msg_type: int, sender: int, recipient: int, lane: int,
             msg_id: int = 0, correlation_id: int = 0) -> bytes | None:
        """The original payload, or ``None`` if the tag does not verify (counted in ``failed``)."""
        n = len(sealed)
        try:
            aad = _aad_pack(msg_type, sender, recipient, lane, msg_id, correlation_id)
        except struct.error:  # header values out of range: cannot be a frame we sealed
            self.failed += 1
            return None
        if self._aead is not None:
            if n < NONCE_BYTES + TAG_BYTES:
                self.failed += 1
                return None
            try:
                plain = self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
            except self._invalid_tag:
                self.failed += 1
                return None
            self.opened += 1
            return plain
        if n < TAG_BYTES:
            self.failed += 1
            return None
        body = sealed[: n - TAG_BYTES]
        h = self._mac.copy()
        h.update(aad)
        h.update(body)
        if not _compare_digest(h.digest(), sealed[n - TAG_BYTES:]):
            self.failed += 1
            return None
        self.opened += 1
        return body

    def open_frame(self, frame: Any) -> bytes | None:
        """:meth:`open` with the header fields of a received ``Frame``."""
        return self.open(frame[9], frame[0], frame[3], frame[4], frame[1], frame[6], frame[7])


def sealer_for(config: SwarmConfig, secret: bytes | None) -> FrameSealer | None:
    """The sealer ``config.security`` asks for, or ``None`` when the bus is not protected.

    Raises:
        RuntimeError: authentication or encryption is configured but no secret was given.
    """
    sec = config.security
    if not (sec.authenticate or sec.encrypt):
        return None
    if not secret:
        raise RuntimeError("security.authenticate/encrypt is on but this process got no swarm secret")
    return FrameSealer(secret, encrypt=sec.encrypt)


# --- receiving -----------------------------------------------------------------------------


class AuthenticatedReceiver:
    """A mailbox ``Receiver`` that hands out only frames whose seal verifies.

    Frames that fail are acknowledged at once (so they leave the ring), counted in
    :attr:`rejected` and reported through :meth:`take_faults` as ``ChannelFault``s
    with the reason ``"authentication failed"``.  Everything else behaves like the
    wrapped receiver; handed-out frames carry the opened payload.
    """

    def __init__(self, inner: Any, sealer: FrameSealer) -> None:
        self.inner = inner
        self.sealer = sealer
        self.rejected = 0
        self._faults: list[Any] = []
        self._max_faults = 1024
        self.faults_dropped_auth = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _check(self, frame: Any) -> Any | None:
        payload = self.sealer.open_frame(frame)
        if payload is None:
            self._reject(frame)
            return None
        return tuple.__new__(type(frame), (*frame[:9], payload, *frame[10:]))

    def _reject(self, frame: Any) -> None:
        from engine.channels import ChannelFault, Lane

        self.rejected += 1
        with contextlib.suppress(ChannelError, ValueError):  # a closed receiver: nothing to free
            self.inner.ack(frame)
        if len(self._faults) >= self._max_faults:
            self.faults_dropped_auth += 1
            return
        try:
            lane = Lane(frame[1])
        except ValueError:  # pragma: no cover - the ring validates the lane
            lane = Lane.NORMAL
        self._faults.append(ChannelFault(
            int(frame[3]), lane,
            f"authentication failed: frame kind {frame[0]} msg_id {frame[6]:#x} claims sender slot "
            f"{frame[3]} but its tag does not verify; dropped", len(frame[9]), int(frame[14]),
            time.monotonic_ns(),
        ))

    def receive_nowait(self) -> Any:
        """The next authentic frame, or ``ChannelEmpty``."""
        while True:
            frame = self._check(self.inner.receive_nowait())
            if frame is not None:
                return frame

    def receive(self, timeout: float | None = None) -> Any:
        """The next authentic frame, waiting up to ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            frame = self._check(self.inner.receive(timeout=left))
            if frame is not None:
                return frame
            if deadline is not None and time.monotonic() >= deadline:
                raise ChannelEmpty("no authentic message arrived in time")

    def receive_batch(self, max_n: int = 256, timeout: float | None = None) -> list[Any]:
        """Up to ``max_n`` authentic frames; waits for at least one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            frames = self.inner.receive_batch(max_n, timeout=left)
            out = [f for f in map(self._check, frames) if f is not None]
            if out:
                return out
            if deadline is not None and time.monotonic() >= deadline:
                raise ChannelEmpty("no authentic message arrived in time")

    def take_faults(self) -> list[Any]:
        """Faults of the wrapped receiver plus authentication failures since the last call."""
        faults = self.inner.take_faults() + self._faults
        self._faults = []
        return faults


def wrap_receiver(receiver: Any, sealer: FrameSealer | None) -> Any:
    """``receiver`` itself when the bus is not protected, else an :class:`AuthenticatedReceiver`."""
    return receiver if sealer is None else AuthenticatedReceiver(receiver, sealer)


# --- access control ------------------------------------------------------------------------


class SendGuard:
    """Checks ``security.acl.send`` for one sender before each data message.

    Args:
        acl: the configured rules.
        sender_type: the sending agent's type (``"orchestrator"`` for the orchestrator).
        sender_id: for messages.
        on_denied: called with a record ``{"recipient", "recipient_type", "count"}``
            for refusals, at most ``max_reports_per_s`` times a second (refusals in
            between are counted into the next record), so that a looping agent cannot
            flood the audit log.
    """

    def __init__(self, acl: AclConfig, sender_type: str, sender_id: str,
                 on_denied: Callable[[dict[str, Any]], None] | None = None, *,
                 max_reports_per_s: float = 10.0) -> None:
        self.acl = acl
        self.sender_type = sender_type
        self.sender_id = sender_id
        self.on_denied = on_denied
        self._decisions: dict[str, bool] = {}
        self._min_gap = 1.0 / max_reports_per_s if max_reports_per_s > 0 else 0.0
        self._last_report = -1e9
        self._unreported: dict[tuple[str, str], int] = {}
        self.denied = 0

    @staticmethod
    def needed(acl: AclConfig, sender_type: str) -> bool:
        """Whether a guard is needed at all for this sender (an empty table allows everything;
        the orchestrator is restricted only when the table names it)."""
        if not acl.send:
            return False
        if sender_type == "orchestrator":
            return "orchestrator" in acl.send
        return True

    def allowed(self, recipient_type: str) -> bool:
        """Whether this sender may message an agent of ``recipient_type``."""
        ok = self._decisions.get(recipient_type)
        if ok is None:
            ok = self._decisions[recipient_type] = self.acl.may_send(self.sender_type, recipient_type)
        return ok

    def check(self, recipient_id: str, recipient_type: str) -> None:
        """Raise :class:`SendDenied` (and report it) if the send is not allowed."""
        if self.allowed(recipient_type):
            return
        self.denied += 1
        key = (recipient_id, recipient_type)
        self._unreported[key] = self._unreported.get(key, 0) + 1
        self.flush()
        raise SendDenied(
            f"{self.sender_id} ({self.sender_type}) may not send messages to {recipient_id} "
            f"({recipient_type}): security.acl.send does not allow {self.sender_type} -> {recipient_type}"
        )

    def flush(self, *, force: bool = False) -> None:
        """Report the refusals not reported yet (rate-limited unless ``force``)."""
        if not self._unreported or self.on_denied is None:
            return
        now = time.monotonic()
        if not force and now - self._last_report < self._min_gap:
            return
        self._last_report = now
        pending, self._unreported = self._unreported, {}
        for (rid, rtype), count in pending.items():
            try:
                self.on_denied({"recipient": rid, "recipient_type": rtype, "count": count,
                                "sender_type": self.sender_type})
            except Exception:  # reporting must never turn a refusal into a crash
                log.warning("reporting a refused send failed", exc_info=True)


def control_authorizer(acl: AclConfig, type_of: Callable[[str], str | None]) -> Callable[[str, str, str], None]:
    """An orchestrator authorizer enforcing ``security.acl.control``.

    ``type_of(agent_id)`` returns an agent's type or ``None`` when the actor is not an
    agent of the swarm (the API, the UI, a person, the orchestrator): those are not
    restricted.  For ``create`` the target is the agent type to create.
    """

    def check(actor: str, action: str, target: str) -> None:
        actor_type = type_of(actor)
        if actor_type is None:
            return
        target_type = target if action == "create" else (type_of(target) or target)
        if not acl.may_control(actor_type, target_type):
            raise AccessDenied(
                f"{actor} ({actor_type}) may not {action} {target} ({target_type}): "
                f"security.acl.control does not allow {actor_type} -> {target_type}"
            )

    return check
