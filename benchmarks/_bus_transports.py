"""Transports compared by ``python -m benchmarks.bus``: one adapter each.

Every transport gives the worker processes the same small interface
(:class:`Endpoint`): ``send``/``recv`` of one ``bytes`` message, ``send_many``/
``recv_many`` for throughput (each transport's own batch API where it has one,
otherwise a loop), and ``close``.  Setup happens in the parent (``setup`` returns
picklable objects handed to the spawned workers as arguments), teardown too.

Every message is a separate message on every transport: batching only saves
calls, never framing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
from typing import Any

__all__ = ["TRANSPORTS", "Endpoint", "Transport", "available_transports"]

SWARM_LANE_BYTES = 1 << 20
FIFO_BYTES = 1 << 20


class Endpoint:
    """One side of a bidirectional link (role ``"a"`` or ``"b"``)."""

    def send(self, msg: bytes) -> None:
        raise NotImplementedError

    def recv(self) -> bytes:
        raise NotImplementedError

    def send_many(self, msgs: list[bytes]) -> None:
        send = self.send
        for m in msgs:
            send(m)

    def recv_many(self) -> list[bytes]:
        return [self.recv()]

    def close(self) -> None:
        pass


class Transport:
    """Parent-side setup/teardown plus the worker-side endpoint factory."""

    name = ""

    def setup(self, ctx: Any) -> Any:
        """Create shared objects; the result is passed to both workers."""
        raise NotImplementedError

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        raise NotImplementedError

    def teardown(self) -> None:
        pass


# --- swarm (this project) ------------------------------------------------------------


class SwarmEndpoint(Endpoint):
    def __init__(self, spec: dict[str, str], role: str) -> None:
        from engine.channels import Lane, Mailbox

        mine, theirs = (spec["a"], spec["b"]) if role == "a" else (spec["b"], spec["a"])
        self.inbox = Mailbox.attach(mine)
        self.outbox = Mailbox.attach(theirs)
        self.rx = self.inbox.receiver()
        self.tx = self.outbox.sender(1, send_timeout=None)
        self.lane = Lane.NORMAL
        self._pending: Any = None
        self._pending_batch: Any = []

    def send(self, msg: bytes) -> None:
        self.tx.send(msg, msg_type=1, lane=self.lane, recipient=0)

    def recv(self) -> bytes:
        # At-least-once: the previous frame is acknowledged once the caller has
        # handled it, i.e. when it asks for the next one.
        if self._pending_batch:
            self.rx.ack_batch(self._pending_batch)
            self._pending_batch = []
        if self._pending is not None:
            self.rx.ack(self._pending)
        f = self._pending = self.rx.receive()
        return f.payload

    def send_many(self, msgs: list[bytes]) -> None:
        self.tx.send_batch(msgs, msg_type=1, lane=self.lane, recipient=0)

    def recv_many(self) -> list[bytes]:
        if self._pending is not None:
            self.rx.ack(self._pending)
            self._pending = None
        if self._pending_batch:
            self.rx.ack_batch(self._pending_batch)
        batch = self._pending_batch = self.rx.receive_batch(512)
        return batch.payloads  # every frame validated; Frame objects never built

    def close(self) -> None:
        if self._pending is not None:
            self.rx.ack(self._pending)
        if self._pending_batch:
            self.rx.ack_batch(self._pending_batch)
        self.rx.close()
        self.tx.close()
        self.inbox.close()
        self.outbox.close()


class SwarmTransport(Transport):
    name = "swarm"

    def setup(self, ctx: Any) -> Any:
        from engine._shm.segments import new_swarm_prefix
        from engine.channels import Mailbox

        prefix = new_swarm_prefix()
        self.mailboxes = [
            Mailbox.create(f"{prefix}-bench-{r}", producers=2, lane_bytes=SWARM_LANE_BYTES)
            for r in ("a", "b")
        ]
        return {"a": self.mailboxes[0].name, "b": self.mailboxes[1].name}

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return SwarmEndpoint(spec, role)

    def teardown(self) -> None:
        for mb in self.mailboxes:
            mb.close()
            mb.unlink()


# --- multiprocessing ----------------------------------------------------------------------


class QueueEndpoint(Endpoint):
    def __init__(self, spec: tuple[Any, Any], role: str) -> None:
        a_to_b, b_to_a = spec
        self.out, self.inq = (a_to_b, b_to_a) if role == "a" else (b_to_a, a_to_b)
        self.send = self.out.put  # type: ignore[method-assign]
        self.recv = self.inq.get  # type: ignore[method-assign]


class MpQueueTransport(Transport):
    name = "mp.Queue"

    def setup(self, ctx: Any) -> Any:
        return (ctx.Queue(), ctx.Queue())

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return QueueEndpoint(spec, role)


class MpSimpleQueueTransport(Transport):
    name = "mp.SimpleQueue"

    def setup(self, ctx: Any) -> Any:
        return (ctx.SimpleQueue(), ctx.SimpleQueue())

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return QueueEndpoint(spec, role)


class PipeEndpoint(Endpoint):
    def __init__(self, spec: tuple[Any, Any], role: str) -> None:
        conn = spec[0] if role == "a" else spec[1]
        self.send = conn.send_bytes  # type: ignore[method-assign]
        self.recv = conn.recv_bytes  # type: ignore[method-assign]
        self.conn = conn

    def close(self) -> None:
        self.conn.close()


class MpPipeTransport(Transport):
    name = "mp.Pipe"

    def setup(self, ctx: Any) -> Any:
        return ctx.Pipe(duplex=True)

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return PipeEndpoint(spec, role)


# --- pyzmq -----------------------------------------------------------------------------------


class ZmqEndpoint(Endpoint):
    def __init__(self, spec: str, role: str) -> None:
        import zmq

        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PAIR)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        if role == "a":
            self.sock.bind(spec)
        else:
            self.sock.connect(spec)
        self.send = self.sock.send  # type: ignore[method-assign]
        self.recv = self.sock.recv  # type: ignore[method-assign]

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


class ZmqTransport(Transport):
    name = "pyzmq ipc PAIR"

    def setup(self, ctx: Any) -> Any:
        self.dir = tempfile.mkdtemp(prefix="swarm-bench-zmq-")
        return f"ipc://{self.dir}/pair.sock"

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return ZmqEndpoint(spec, role)

    def teardown(self) -> None:
        try:
            os.unlink(f"{self.dir}/pair.sock")
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)


# --- faster-fifo ----------------------------------------------------------------------------


class FifoEndpoint(Endpoint):
    def __init__(self, spec: tuple[Any, Any], role: str) -> None:
        a_to_b, b_to_a = spec
        self.out, self.inq = (a_to_b, b_to_a) if role == "a" else (b_to_a, a_to_b)

    def send(self, msg: bytes) -> None:
        self.out.put(msg, timeout=1e6)

    def recv(self) -> bytes:
        return self.inq.get(timeout=1e6)  # type: ignore[no-any-return]

    def send_many(self, msgs: list[bytes]) -> None:
        self.out.put_many(msgs, timeout=1e6)

    def recv_many(self) -> list[bytes]:
        return self.inq.get_many(timeout=1e6, max_messages_to_get=512)  # type: ignore[no-any-return]


class FasterFifoTransport(Transport):
    name = "faster-fifo"

    def setup(self, ctx: Any) -> Any:
        import faster_fifo

        # loads/dumps=bytes: raw bytes, no pickling (the fairest use of the queue).
        return (
            faster_fifo.Queue(FIFO_BYTES, loads=bytes, dumps=bytes),
            faster_fifo.Queue(FIFO_BYTES, loads=bytes, dumps=bytes),
        )

    @staticmethod
    def endpoint(spec: Any, role: str) -> Endpoint:
        return FifoEndpoint(spec, role)


TRANSPORTS: dict[str, type[Transport]] = {
    "swarm": SwarmTransport,
    "mp.Queue": MpQueueTransport,
    "mp.SimpleQueue": MpSimpleQueueTransport,
    "mp.Pipe": MpPipeTransport,
    "pyzmq": ZmqTransport,
    "faster-fifo": FasterFifoTransport,
}


def available_transports() -> list[str]:
    """Transport keys whose libraries import here."""
    names = []
    for key in TRANSPORTS:
        try:
            if key == "pyzmq":
                import zmq  # noqa: F401
            elif key == "faster-fifo":
                import faster_fifo  # noqa: F401
        except ImportError:
            continue
        names.append(key)
    return names


def spawn_context() -> Any:
    """The start method used for worker processes (clean interpreters)."""
    return mp.get_context("spawn")
