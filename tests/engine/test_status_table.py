"""The status table and the agent directory: layout, seqlock consistency, single writer."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

import pytest

from engine._shm.directory import Directory, DirectoryEntry
from engine._shm.segments import Segment, new_swarm_prefix
from engine._shm.status_table import MAX_GAUGES, AgentState, StatusTable


@pytest.fixture
def table() -> Any:
    t = StatusTable.create(new_swarm_prefix() + "-status", 4)
    yield t
    t.segment.unlink()
    t.close()


def test_row_round_trips_every_field(table: StatusTable) -> None:
    """What the writer publishes is what a reader gets back, gauges included."""
    w = table.writer(2)
    w.update(pid=1234, state=AgentState.THROTTLED, priority=-5, incarnation=3, agent_id="compute-1",
             agent_type="compute", heartbeat_ns=99, tasks_done=7, cpu_time_s=1.5, rss_bytes=4096,
             duty_cycle=0.25, gauges={"gbps": 12.5, "gflops": 3.0})
    row = table.read(2)
    assert (row.pid, row.state, row.priority, row.incarnation) == (1234, AgentState.THROTTLED, -5, 3)
    assert (row.agent_id, row.agent_type, row.tasks_done) == ("compute-1", "compute", 7)
    assert (row.cpu_time_s, row.rss_bytes, row.duty_cycle) == (1.5, 4096, 0.25)
    assert row.gauge("gbps") == 12.5 and row.gauge("missing", -1.0) == -1.0
    assert not row.torn
    assert [r.slot for r in table.read_all()] == [2]


def test_long_ids_are_cut_on_a_character_boundary(table: StatusTable) -> None:
    """A 40-byte id is cut to 32 bytes without splitting a multi-byte character."""
    table.writer(0).update(agent_id="é" * 20, state=AgentState.RUNNING)
    assert table.read(0).agent_id == "é" * 16


def test_gauge_limit_and_unknown_field_are_errors(table: StatusTable) -> None:
    """More than MAX_GAUGES gauges or an unknown field name is refused."""
    w = table.writer(1)
    with pytest.raises(ValueError, match=str(MAX_GAUGES)):
        w.update(gauges={f"g{i}": i for i in range(MAX_GAUGES + 1)})
    with pytest.raises(KeyError, match="colour"):
        w.update(colour=3)


def test_slot_out_of_range(table: StatusTable) -> None:
    """Reading past the last slot names the valid range."""
    with pytest.raises(IndexError, match="0..3"):
        table.read(4)


def test_not_a_status_table() -> None:
    """Attaching some other segment as a table is refused."""
    seg = Segment.create(new_swarm_prefix() + "-junk", 4096)
    try:
        with pytest.raises(ValueError, match="not a status table"):
            StatusTable(seg)
    finally:
        seg.unlink()
        seg.close()


def _hammer(name: str, slot: int, seconds: float) -> None:
    table = StatusTable.attach(name)
    w = table.writer(slot)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        # Every field carries the same number: a torn read would mix two values.
        w.update(pid=i, tasks_done=i, cycles=i, msgs_in=i, rss_bytes=i, state=AgentState.RUNNING,
                 gauges={"a": float(i), "b": float(i)})
    table.close()


def test_reader_never_sees_a_torn_row_while_another_process_writes(table: StatusTable) -> None:
    """Rows copied while a writer process rewrites them are always internally consistent."""
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_hammer, args=(table.segment.name, 1, 1.0))
    proc.start()
    consistent = 0
    try:
        while proc.is_alive():
            row = table.read(1)
            if row.torn:
                continue
            values = {row.pid, row.tasks_done, row.cycles, row.msgs_in, row.rss_bytes}
            if row.pid:
                values |= {int(v) for _, v in row.gauges}
            assert len(values) == 1, f"torn row: {row}"
            consistent += 1
    finally:
        proc.join()
    assert proc.exitcode == 0
    assert consistent > 100


def test_directory_publish_lookup_and_version() -> None:
    """The orchestrator publishes entries; readers look them up by id and slot."""
    d = Directory.create(new_swarm_prefix() + "-dir", 4)
    try:
        reader = Directory.attach(d.segment.name)
        v0 = reader.version
        d.publish(DirectoryEntry(1, 1, True, "compute-1", "compute"))
        d.publish(DirectoryEntry(3, 2, True, "echo-1", "echo"))
        assert reader.version > v0
        assert reader.lookup("echo-1") == DirectoryEntry(3, 2, True, "echo-1", "echo")
        assert [e.agent_id for e in reader.live_entries()] == ["compute-1", "echo-1"]
        d.publish(DirectoryEntry(1, 1, False, "", ""))
        assert reader.lookup("compute-1") is None
        assert reader.lookup_slot(3) is not None
        reader.close()
    finally:
        d.segment.unlink()
        d.close()


def test_segments_are_private_to_the_owner() -> None:
    """Every segment is created with mode 0600 and an unguessable name."""
    a, b = new_swarm_prefix(), new_swarm_prefix()
    assert a != b and a.startswith(f"swarm-{os.getpid()}-")
    seg = Segment.create(a + "-x", 8192)
    try:
        assert os.stat(f"/dev/shm/{seg.name}").st_mode & 0o777 == 0o600
    finally:
        seg.unlink()
        seg.close()
