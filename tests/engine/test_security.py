"""Security (issue 8): segment permissions, frame MAC and encryption, access control, limits.

Unit tests drive ``engine.security`` and a real mailbox in this process; process tests
run a swarm and attack it from outside (a frame written into an agent's ring without
the swarm secret), or let agents break the rules (a send the ACL forbids, an action
the control ACL forbids, a CPU-time, open-files or RSS limit).
"""

from __future__ import annotations

import asyncio
import os
import stat
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import psutil
import pytest

from engine import Orchestrator
from engine._runtime.launch import AgentLaunch, mailbox_name
from engine._runtime.protocol import Kind
from engine._shm.ring import P_TAIL, RING_HEADER_BYTES
from engine._shm.segments import list_segments, new_swarm_prefix, parse_owner
from engine.channels import ChannelEmpty, Lane, Mailbox
from engine.communicator import Message, encode_message
from engine.config import config_from_mapping
from engine.errors import AccessDenied, ChannelError, ConfigError
from engine.security import (
    AuthenticatedReceiver,
    FrameSealer,
    SendDenied,
    SendGuard,
    control_authorizer,
    new_secret,
)
from tests.conftest import fast_config_data

PREFIX = new_swarm_prefix()
CHATTY = "tests.swarm_test_agents:ChattyAgent"


def _config(**overrides: Any) -> Any:
    data = fast_config_data(**overrides)
    data["custom_agents"] = {"chatty": {"import_path": CHATTY},
                             "leaker": {"import_path": "tests.swarm_test_agents:LeakAgent"},
                             **data["custom_agents"]}
    return config_from_mapping(data, "test-security")


class Events:
    def __init__(self, swarm: Orchestrator) -> None:
        self.items: list[Any] = []
        swarm.add_event_handler("*", self.items.append)

    def named(self, name: str, agent_id: str | None = None) -> list[Any]:
        return [e for e in self.items if e.name == name and (agent_id is None or e.agent_id == agent_id)]

    async def wait(self, name: str, agent_id: str | None = None, timeout: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not self.named(name, agent_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name} for {agent_id}; saw {[(e.name, e.agent_id) for e in self.items]}")
            await asyncio.sleep(0.02)
        return self.named(name, agent_id)


# --- the sealer --------------------------------------------------------------------------------


HEADER = (int(Kind.DATA), 3, 5, int(Lane.NORMAL), 0x1234, 0)


@pytest.mark.parametrize("encrypt", [False, True])
def test_sealed_payload_opens_only_with_the_same_key_and_header(encrypt: bool) -> None:
    """Round trip works; a changed header field, payload byte or key fails (counted)."""
    secret = new_secret()
    sealer = FrameSealer(secret, encrypt=encrypt)
    payload = b"transfer 100 to compute-7"
    sealed = sealer.seal(payload, *HEADER)
    assert len(sealed) == len(payload) + sealer.overhead
    assert sealer.open(sealed, *HEADER) == payload
    for i in range(len(HEADER)):  # every header field is covered
        changed = list(HEADER)
        changed[i] += 1
        assert sealer.open(sealed, *changed) is None
    for pos in (0, len(sealed) // 2, len(sealed) - 1):
        bad = bytearray(sealed)
        bad[pos] ^= 0x01
        assert sealer.open(bytes(bad), *HEADER) is None
    assert FrameSealer(new_secret(), encrypt=encrypt).open(sealed, *HEADER) is None
    assert sealer.open(b"", *HEADER) is None
    assert sealer.failed == len(HEADER) + 3 + 1


def test_encryption_hides_the_payload_and_never_repeats_a_nonce() -> None:
    """With encryption the plaintext is not in the sealed bytes; nonces are unique."""
    sealer = FrameSealer(new_secret(), encrypt=True)
    payload = b"SECRET-MARKER-" * 4
    sealed = [sealer.seal(payload, *HEADER) for _ in range(1000)]
    assert all(b"SECRET-MARKER" not in s for s in sealed)
    assert len({s[:12] for s in sealed}) == 1000
    assert sealer.mode.startswith("aead:")
    assert FrameSealer(new_secret()).mode == "mac:blake2b-128"


def test_secret_is_random_and_stays_out_of_reprs() -> None:
    """Each swarm gets its own 32-byte secret; an AgentLaunch's repr does not show it."""
    a, b = new_secret(), new_secret()
    assert len(a) == 32 and a != b
    launch = AgentLaunch(agent_id="x", agent_type="t", import_path="m:C", options={}, slot=1, generation=1,
                         incarnation=0, prefix="p", status_name="s", directory_name="d", orchestrator_pid=1,
                         config=None, cycle_interval=1.0, secret=a)  # type: ignore[arg-type]
    assert a.hex() not in repr(launch) and repr(a) not in repr(launch)


# --- a real mailbox: forged and altered frames -------------------------------------------------


class Box:
    """A mailbox with producers 0..3; the receiver authenticates."""

    def __init__(self, name: str, *, encrypt: bool = False) -> None:
        self.mb = Mailbox.create(f"{PREFIX}-{name}", producers=4, lane_bytes=4096)
        self.sealer = FrameSealer(new_secret(), encrypt=encrypt)
        self.rx = AuthenticatedReceiver(self.mb.receiver(spin_us=0, sleep_s=0.005), self.sealer)
        self.tx = {k: self.mb.sender(k, send_timeout=0.05) for k in (1, 2)}

    def send(self, producer: int, payload: bytes, *, sealed_as: int | None = None, msg_id: int = 7) -> None:
        body = self.sealer.seal(payload, int(Kind.DATA), producer if sealed_as is None else sealed_as, 0,
                                int(Lane.NORMAL), msg_id, 0)
        self.tx[producer].send(body, msg_type=int(Kind.DATA), lane=Lane.NORMAL, recipient=0, msg_id=msg_id)

    def drain(self) -> list[bytes]:
        got = []
        for _ in range(100):
            try:
                f = self.rx.receive_nowait()
            except ChannelEmpty:
                return got
            got.append(f.payload)
            self.rx.ack(f)
        raise AssertionError("receiver did not run dry")

    def close(self) -> None:
        self.rx.close()
        self.mb.close()
        self.mb.unlink()


def test_forged_sender_and_unsealed_frames_are_rejected_counted_and_freed() -> None:
    """A frame sealed as slot 1 but sent from slot 2, or one without a tag, never arrives."""
    box = Box("forge")
    try:
        box.send(1, b"genuine")
        box.send(2, b"claims to be slot 1", sealed_as=1)  # forged sender
        box.tx[2].send(b"no tag at all" * 3, msg_type=int(Kind.DATA), lane=Lane.NORMAL, recipient=0)
        box.send(2, b"genuine too")
        assert sorted(box.drain()) == [b"genuine", b"genuine too"]
        assert box.rx.rejected == 2
        faults = box.rx.take_faults()
        assert len(faults) == 2 and all("authentication failed" in f.reason for f in faults)
        assert {f.producer for f in faults} == {2}
        # rejected frames were acknowledged: the ring has room for a full lane again
        stats = box.mb.statistics()
        assert stats.total.queued_bytes == 0
    finally:
        box.close()


@pytest.mark.parametrize("encrypt", [False, True])
def test_altered_payload_with_a_valid_checksum_is_rejected(encrypt: bool) -> None:
    """Someone who rewrites a payload byte and fixes the ring's checksum is still caught."""
    box = Box(f"alter{int(encrypt)}", encrypt=encrypt)
    try:
        box.send(1, b"warm-up")
        assert box.drain() == [b"warm-up"]
        ring = box.mb.ring_offset(1, Lane.NORMAL)
        tail = struct.unpack_from("<Q", box.mb._seg.buf, ring + 8 * P_TAIL)[0]
        rec = ring + RING_HEADER_BYTES + (tail & (4096 - 1))
        box.send(1, b"pay 10 credits")
        buf = box.mb._seg.buf
        plen = struct.unpack_from("<I", buf, rec + 4)[0]
        flags = buf[rec + 47]
        buf[rec + 48] ^= 0xFF  # first payload byte
        span = bytes(buf[rec + 4 : rec + 48 + plen])
        struct.pack_into("<I", buf, rec, zlib.adler32(span) if flags & 0x02 else zlib.crc32(span))
        assert box.drain() == []
        assert box.rx.rejected == 1
        assert box.mb.statistics().total.rejected == 0  # the ring itself saw a valid frame
        box.send(1, b"after")
        assert box.drain() == [b"after"]
    finally:
        box.close()


# --- access control (unit) ---------------------------------------------------------------------


def test_send_guard_follows_the_acl_and_rate_limits_its_reports() -> None:
    """Denied sends raise SendDenied (an AccessDenied and a ChannelError); reports are bounded."""
    cfg = _config(security={"allowed_agent_modules": ["tests"],
                            "acl": {"send": {"chatty": ["orchestrator", "counter"], "*": ["orchestrator"]}}})
    acl = cfg.security.acl
    reports: list[dict[str, Any]] = []
    guard = SendGuard(acl, "chatty", "chatty-1", reports.append, max_reports_per_s=1.0)
    guard.check("counter-1", "counter")
    guard.check("orchestrator", "orchestrator")
    for _ in range(50):
        with pytest.raises(SendDenied, match="chatty-1 .* may not send messages to leaker-1"):
            guard.check("leaker-1", "leaker")
    assert issubclass(SendDenied, AccessDenied) and issubclass(SendDenied, ChannelError)
    assert guard.denied == 50
    assert len(reports) == 1 and reports[0]["recipient"] == "leaker-1" and reports[0]["count"] == 1
    guard.flush(force=True)
    assert len(reports) == 2 and reports[1]["count"] == 49
    assert SendGuard.needed(acl, "counter") and not SendGuard.needed(acl, "orchestrator")
    other = SendGuard(acl, "counter", "counter-1")
    other.check("orchestrator", "orchestrator")
    with pytest.raises(SendDenied):
        other.check("chatty-1", "chatty")


def test_control_authorizer_restricts_agents_not_people() -> None:
    """acl.control applies to agent actors; the API/UI are not agents and are not restricted."""
    cfg = _config(security={"allowed_agent_modules": ["tests"],
                            "acl": {"control": {"chatty": ["counter"]}}})
    types = {"chatty-1": "chatty", "counter-1": "counter", "leaker-1": "leaker"}
    check = control_authorizer(cfg.security.acl, types.get)
    check("chatty-1", "pause", "counter-1")
    check("api", "destroy", "leaker-1")
    check("chatty-1", "create", "counter")
    with pytest.raises(AccessDenied, match="chatty-1 .chatty. may not pause leaker-1"):
        check("chatty-1", "pause", "leaker-1")
    with pytest.raises(AccessDenied):
        check("counter-1", "pause", "chatty-1")


def test_custom_agent_modules_must_be_allow_listed() -> None:
    """A custom agent outside security.allowed_agent_modules is a configuration error."""
    with pytest.raises(ConfigError, match="allowed_agent_modules"):
        config_from_mapping({"custom_agents": {"evil": {"import_path": "os.path:join"}}}, "t")


# --- the swarm -------------------------------------------------------------------------------


async def test_every_segment_is_owner_only_with_an_unguessable_name() -> None:
    """Status table, directory and every mailbox: mode 0600, 64 random bits in the name."""
    async with Orchestrator(_config()) as swarm:
        for _ in range(2):
            await swarm.wait_ready(await swarm.create_agent("counter"))
        names = list_segments(swarm.prefix)
        assert len(names) >= 5  # status, directory, orchestrator + 2 agent mailboxes
        for name in names:
            st = os.stat(f"/dev/shm/{name}")
            assert stat.S_IMODE(st.st_mode) == 0o600, (name, oct(st.st_mode))
            assert st.st_uid == os.getuid()
            owner = parse_owner(name)
            assert owner is not None and owner.pid == os.getpid() and len(owner.token) >= 16


def _forge(swarm: Orchestrator, agent_id: str, message_type: str, payload: Any, *, producer: int) -> None:
    """Write a DATA frame into ``agent_id``'s inbox as ``producer``, without the secret."""
    d = swarm.agent_details(agent_id)
    gen = swarm._slots[d["slot"]].generation
    mb = Mailbox.attach(mailbox_name(swarm.prefix, d["slot"], gen))
    try:
        tx = mb.sender(producer, send_timeout=0.5)
        msg = Message(recipient_id=agent_id, message_type=message_type, payload=payload,
                      sender_id="orchestrator", msg_id=99)
        tx.send(encode_message(msg), msg_type=int(Kind.DATA), lane=Lane.NORMAL, recipient=d["slot"], msg_id=99)
        tx.close()
    finally:
        mb.close()


@pytest.mark.parametrize("mode", ["authenticate", "encrypt"])
async def test_authenticated_swarm_rejects_a_forged_frame(mode: str) -> None:
    """With a per-swarm secret, requests work; a frame forged from outside is dropped and reported."""
    cfg = _config(security={"allowed_agent_modules": ["tests"], mode: True})
    async with Orchestrator(cfg) as swarm:
        events = Events(swarm)
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        assert (await swarm.communicator.request(aid, "inc", 2, timeout=5)).payload == 2
        _forge(swarm, aid, "inc", 1000, producer=5)  # claims a slot that has no agent
        faults = await events.wait("channel_fault", aid)
        assert "authentication failed" in faults[0].message
        assert (await swarm.communicator.request(aid, "get", timeout=5)).payload["count"] == 2
        if mode == "encrypt":  # the payload never appears in clear in shared memory
            marker = "PLAINTEXT-MARKER-0123456789"
            await swarm.communicator.request(aid, "inc", 1, timeout=5)
            swarm.communicator.send_message(recipient_id=aid, message_type=marker, payload=marker)
            await asyncio.sleep(0.2)
            for name in list_segments(swarm.prefix):
                assert marker.encode() not in Path(f"/dev/shm/{name}").read_bytes()


async def test_unauthenticated_swarm_accepts_what_the_ring_accepts() -> None:
    """Control: without security.authenticate the same outside frame is delivered."""
    async with Orchestrator(_config()) as swarm:
        aid = await swarm.create_agent("counter")
        await swarm.wait_ready(aid)
        _forge(swarm, aid, "inc", 1000, producer=5)
        deadline = time.monotonic() + 5
        while (await swarm.communicator.request(aid, "get", timeout=5)).payload["count"] != 1000:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_denied_send_is_an_error_an_audit_entry_and_never_delivered() -> None:
    """acl.send: chatty may message chatty and the orchestrator only."""
    cfg = _config(security={"allowed_agent_modules": ["tests"],
                            "acl": {"send": {"chatty": ["chatty", "orchestrator"], "*": ["orchestrator"]}}})
    async with Orchestrator(cfg) as swarm:
        audit: list[dict[str, Any]] = []
        swarm.add_audit_sink(audit.append)
        events = Events(swarm)
        a = await swarm.create_agent("chatty", id="a")
        b = await swarm.create_agent("chatty", id="b")
        c = await swarm.create_agent("counter", id="c")
        for x in (a, b, c):
            await swarm.wait_ready(x)
        denied = (await swarm.communicator.request(a, "send_to", c, timeout=5)).payload
        assert denied["ok"] is False and denied["error"].startswith("SendDenied")
        assert "security.acl.send" in denied["error"]
        assert (await swarm.communicator.request(a, "send_to", b, timeout=5)).payload == {"ok": True}
        await events.wait("access_denied", a)
        deadline = time.monotonic() + 5
        while not [r for r in audit if r["outcome"] == "denied"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        entry = next(r for r in audit if r["outcome"] == "denied")
        assert (entry["actor"], entry["action"], entry["target"]) == ("a", "send", "c")
        assert (await swarm.communicator.request(c, "get", timeout=5)).payload["count"] == 0
        seen = (await swarm.communicator.request(b, "received", timeout=5)).payload
        assert ["a", "hello"] in seen
        # the orchestrator itself is not restricted by a table that does not name it
        assert (await swarm.communicator.request(c, "inc", 1, timeout=5)).payload == 1


async def test_control_acl_denies_an_agents_action_and_audits_it() -> None:
    """acl.control: a chatty agent may not pause a counter; the refusal is audited."""
    cfg = _config(security={"allowed_agent_modules": ["tests"], "acl": {"control": {"chatty": ["chatty"]}}})
    async with Orchestrator(cfg) as swarm:
        audit: list[dict[str, Any]] = []
        swarm.add_audit_sink(audit.append)
        a = await swarm.create_agent("chatty", id="a")
        c = await swarm.create_agent("counter", id="c")
        await swarm.wait_ready(a)
        await swarm.wait_ready(c)
        with pytest.raises(AccessDenied):
            await swarm.perform_action("pause", "c", actor="a")  # what a swarm_action from a does
        assert next(r for r in audit if r["outcome"] == "denied")["target"] == "c"
        assert swarm.agent_details("c")["state"] != "paused"
        await swarm.pause_agent("c", actor="ui")  # a person is not restricted
        assert swarm.agent_details("c")["state"] in ("paused", "running")


# --- resource limits -------------------------------------------------------------------------


async def test_cpu_time_limit_stops_the_agent_and_the_event_names_it() -> None:
    """RLIMIT_CPU: SIGXCPU becomes limit_exceeded (cpu_time_limit_s), a crash, a restart."""
    cfg = _config(custom_agents={"chatty": {"import_path": CHATTY, "cpu_time_limit_s": 1}})
    async with Orchestrator(cfg) as swarm:
        events = Events(swarm)
        a = await swarm.create_agent("chatty")
        await swarm.wait_ready(a)
        swarm.communicator.send_message(recipient_id=a, message_type="burn", payload=30.0)
        limit = await events.wait("limit_exceeded", a, timeout=30)
        assert limit[0].data["limit"] == "cpu_time_limit_s"
        crashed = await events.wait("agent_crashed", a)
        assert "CPU time limit" in crashed[0].message
        await events.wait("agent_restarted", a)


async def test_open_files_limit_stops_the_agent_and_the_event_names_it() -> None:
    """RLIMIT_NOFILE: running out of descriptors is reported as open_files_limit."""
    cfg = _config(custom_agents={"chatty": {"import_path": CHATTY, "open_files_limit": 64}})
    async with Orchestrator(cfg) as swarm:
        events = Events(swarm)
        a = await swarm.create_agent("chatty")
        await swarm.wait_ready(a)
        assert psutil.Process(swarm.agent_details(a)["pid"]).rlimit(psutil.RLIMIT_NOFILE) == (64, 64)
        swarm.communicator.send_message(recipient_id=a, message_type="fd_hog")
        limit = await events.wait("limit_exceeded", a)
        assert limit[0].data["limit"] == "open_files_limit"
        await events.wait("agent_restarted", a)


async def test_rss_limit_and_nice_value_from_config() -> None:
    """rss_limit_mb: the supervisor kills a leaking agent (limit_exceeded rss_limit_mb);
    priority: the agent runs at that nice value."""
    base = psutil.Process().memory_info().rss // 2**20
    limit = int(base + 150)
    cfg = _config(custom_agents={
        "leaker": {"import_path": "tests.swarm_test_agents:LeakAgent", "rss_limit_mb": limit, "priority": 5,
                   "cycle_interval": 0.05, "options": {"leak_mb": 25, "max_leak_mb": 600}}})
    async with Orchestrator(cfg) as swarm:
        events = Events(swarm)
        a = await swarm.create_agent("leaker")
        await swarm.wait_ready(a)
        pid = swarm.agent_details(a)["pid"]
        try:
            assert psutil.Process(pid).nice() == 5
        except psutil.NoSuchProcess:  # already over the limit and killed
            pass
        exceeded = await events.wait("limit_exceeded", a, timeout=30)
        assert exceeded[0].data["limit"] == "rss_limit_mb"
        await events.wait("agent_restarted", a)


def test_config_limits_round_trip() -> None:
    """The limit keys are validated like every other key."""
    with pytest.raises(ConfigError, match="open_files_limit"):
        _config(custom_agents={"chatty": {"import_path": CHATTY, "open_files_limit": -1}})


def test_batches_of_sealed_small_messages_cross_the_ring_end() -> None:
    """Regression (found with the MAC): a 64-byte message plus its 16-byte tag makes a
    128-byte record, which divides the ring; batches must not run past the end."""
    mb = Mailbox.create(f"{PREFIX}-batch", producers=2, lane_bytes=4096)
    sealer = FrameSealer(new_secret())
    rx = AuthenticatedReceiver(mb.receiver(spin_us=0, sleep_s=0.005), sealer)
    tx = mb.sender(1, send_timeout=0.5)
    try:
        for lap in range(40):  # 40 x 20 x 128 bytes: 25 laps of the 4 KiB ring
            sent = [bytes([lap]) * 64 for _ in range(20)]
            tx.send_batch([sealer.seal(m, int(Kind.DATA), 1, 0, int(Lane.NORMAL)) for m in sent],
                          msg_type=int(Kind.DATA), lane=Lane.NORMAL, recipient=0)
            got = []
            while True:
                try:
                    f = rx.receive_nowait()
                except ChannelEmpty:
                    break
                got.append(f.payload)
                rx.ack(f)
            assert got == sent
        assert rx.rejected == 0
    finally:
        tx.close()
        rx.close()
        mb.close()
        mb.unlink()
