"""Session recordings: format, round trip, crash safety and bad input (no swarm processes)."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.events import Severity
from engine.recording import (
    FORMAT_VERSION,
    FRAME_HEADER_SIZE,
    SIGNATURE,
    Recorder,
    RecordingError,
    RecordingSettings,
    RecordingWriter,
    open_recording,
    snapshot_from_dict,
)
from tests.recording_fixtures import (
    T0,
    FakeClock,
    event,
    header,
    snapshot,
    write_recording,
)


def chunk_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, payload length) of every chunk frame, read with the documented layout."""
    data = path.read_bytes()
    offset = 12
    out = []
    while offset + FRAME_HEADER_SIZE <= len(data):
        marker, kind, _codec, _seq, length = struct.unpack_from("<4sBBxxII", data, offset)
        assert marker == b"SWFR"
        if kind == 2:
            out.append((offset, length))
        offset += FRAME_HEADER_SIZE + length
    return out


def test_round_trip_keeps_header_events_and_snapshots(tmp_path: Path) -> None:
    """What is written comes back: header facts, every event, every snapshot (values equal)."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=10)
    rec = open_recording(path)
    assert rec.format_version == FORMAT_VERSION and rec.engine_version == "0.1.0"
    assert rec.header["machine"] == {"brand": "Test CPU", "identity_key": "test-key"}
    assert rec.header["config"]["name"] == "test-swarm"
    assert rec.name == "test-swarm" and not rec.truncated and rec.warnings == []
    assert rec.end is not None and rec.end["reason"] == "test"
    assert [e.name for e in rec.events] == ["agent_created", "performance_alert", "agent_crashed"]
    assert rec.events[1].severity is Severity.WARNING and rec.events[1].data == {"metric": "cpu"}
    assert len(rec.snapshot_times) == 10
    for i, snap in enumerate(rec.snapshots()):
        assert snap == snapshot(i)  # frozen dataclasses: field-by-field equality
    assert rec.duration == pytest.approx(9.0)


def test_file_starts_with_signature_and_version_and_header_is_plain_json(tmp_path: Path) -> None:
    """The documented layout: signature, u16 version, then a JSON header frame."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=2)
    data = path.read_bytes()
    assert data[:8] == SIGNATURE
    assert struct.unpack_from("<H", data, 8)[0] == FORMAT_VERSION
    length = struct.unpack_from("<I", data, 12 + 12)[0]
    head = json.loads(data[12 + FRAME_HEADER_SIZE: 12 + FRAME_HEADER_SIZE + length])
    assert head["format_version"] == FORMAT_VERSION and head["name"] == "test-swarm"


def test_chunks_follow_the_chunk_interval_and_snapshot_interval_thins_snapshots(tmp_path: Path) -> None:
    """A chunk is written every chunk_seconds; snapshots closer than snapshot_interval are skipped."""
    path = tmp_path / "run.swrec"
    clock = FakeClock()
    writer = RecordingWriter(path, header=header(), clock=clock,
                             settings=RecordingSettings(chunk_seconds=4.0, snapshot_interval=2.0, fsync=False))
    writer.open()
    for i in range(12):
        writer.add_snapshot(snapshot(i))
        clock.advance(1.0)
    writer.close()
    rec = open_recording(path)
    assert [t - T0 for t in rec.snapshot_times] == [0, 2, 4, 6, 8, 10]
    # a chunk closes when a record arrives 4 s after the chunk's first one
    assert [(c.t0 - T0, c.t1 - T0, c.n_snapshots) for c in rec.chunks] == [(0, 4, 3), (6, 10, 3)]


def test_recording_cut_mid_chunk_plays_up_to_last_complete_chunk(tmp_path: Path) -> None:
    """A file cut inside a chunk (crash mid-write) opens, says it was truncated, and keeps whole chunks."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=10, chunk_seconds=3.0, close=False)
    chunks = chunk_offsets(path)
    last_offset, last_length = chunks[-1]
    with open(path, "r+b") as f:
        f.truncate(last_offset + FRAME_HEADER_SIZE + last_length // 2)
    rec = open_recording(path)
    assert rec.truncated and rec.end is None
    assert any("cut off" in w and "incomplete chunk" in w for w in rec.warnings)
    complete = open_recording(path).chunks
    assert len(complete) == len(chunks) - 1
    assert len(rec.snapshot_times) == sum(c.n_snapshots for c in complete)
    assert rec.snapshot(len(rec.snapshot_times) - 1) == snapshot(len(rec.snapshot_times) - 1)


def test_process_killed_while_recording_leaves_a_playable_file(tmp_path: Path) -> None:
    """A recorder process SIGKILLed mid-session leaves every chunk it completed readable."""
    path = tmp_path / "killed.swrec"
    code = textwrap.dedent(f"""
        import os, signal
        from engine.recording import RecordingSettings, RecordingWriter
        from tests.recording_fixtures import FakeClock, header, snapshot
        clock = FakeClock()
        w = RecordingWriter({str(path)!r}, header=header(), clock=clock,
                            settings=RecordingSettings(chunk_seconds=2.0))
        w.open()
        for i in range(7):
            w.add_snapshot(snapshot(i))
            clock.advance(1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2], capture_output=True)
    assert proc.returncode == -9, proc.stderr
    rec = open_recording(path)
    assert rec.truncated and any("cut off" in w for w in rec.warnings)
    assert [t - T0 for t in rec.snapshot_times] == [0, 1, 2, 3, 4, 5]  # 3 complete chunks; the 7th was buffered


def test_corrupt_chunk_is_skipped_with_a_warning_and_later_chunks_play(tmp_path: Path) -> None:
    """A flipped byte inside one chunk loses that chunk only."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=9, chunk_seconds=3.0)
    intact = open_recording(path)
    assert len(intact.chunks) == 3
    lost = intact.chunks[1]
    offset, length = chunk_offsets(path)[1]
    data = bytearray(path.read_bytes())
    data[offset + FRAME_HEADER_SIZE + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rec = open_recording(path)
    assert not rec.truncated and rec.end is not None
    assert any("chunk 2" in w and "corrupt" in w and "skipped" in w for w in rec.warnings)
    assert rec.snapshot_times == [t for t in intact.snapshot_times if not lost.t0 <= t <= lost.t1]
    assert len(rec.snapshot_times) == len(intact.snapshot_times) - lost.n_snapshots


def test_corrupt_length_stops_at_the_corruption_with_a_warning(tmp_path: Path) -> None:
    """A chunk whose length field is damaged ends the readable part; what came before plays."""
    path = tmp_path / "run.swrec"
    write_recording(path, seconds=9, chunk_seconds=3.0)
    first = open_recording(path).chunks[0]
    offset, length = chunk_offsets(path)[1]
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offset + 12, length - 7)
    path.write_bytes(bytes(data))
    rec = open_recording(path)
    assert rec.truncated
    assert any("corrupt from byte" in w for w in rec.warnings)
    assert len(rec.chunks) == 1 and len(rec.snapshot_times) == first.n_snapshots


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "cannot open recording"),
    (lambda p: p.write_text("hello, I am a text file\n"), "is not a swarm-tui recording"),
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_bytes(SIGNATURE + struct.pack("<HH", FORMAT_VERSION + 1, 0) + b"\0" * 64),
     f"format version {FORMAT_VERSION + 1}, newer"),
    (lambda p: p.write_bytes(SIGNATURE + struct.pack("<HH", FORMAT_VERSION, 0) + b"SWFR" + b"\0" * 10),
     "header is missing or corrupt"),
])  # fmt: skip
def test_bad_input_gives_one_line_error_naming_the_file(tmp_path: Path, make: Any, expected: str) -> None:
    """Missing, not a recording, empty, too new, damaged header: RecordingError, one line, file named."""
    path = tmp_path / "bad.swrec"
    make(path)
    with pytest.raises(RecordingError) as info:
        open_recording(path)
    message = str(info.value)
    assert expected in message and "bad.swrec" in message and "\n" not in message


@pytest.mark.parametrize("content, expected", [
    (None, "cannot open recording"),
    ("not a recording", "is not a swarm-tui recording"),
])  # fmt: skip
def test_cli_replay_of_bad_input_exits_2_without_traceback(tmp_path: Path, content: str | None,
                                                           expected: str) -> None:
    """``python -m engine --replay`` of a bad file: exit 2, one line on stderr, no traceback."""
    path = tmp_path / "bad.swrec"
    if content is not None:
        path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "engine", "--replay", str(path)], capture_output=True,
                          text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_cli_replay_of_truncated_file_warns_and_prints_what_is_there(tmp_path: Path) -> None:
    """A cut-off recording replays headless with a warning on stderr and exit 0."""
    path = tmp_path / "cut.swrec"
    write_recording(path, seconds=10, chunk_seconds=3.0, close=False)
    proc = subprocess.run([sys.executable, "-m", "engine", "--replay", str(path), "--json"],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "cut off" in proc.stderr and "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["type"] == "recording" and lines[0]["truncated"] is True
    assert [r["event"] for r in lines if r["type"] == "event"] == ["agent_created", "performance_alert",
                                                                    "agent_crashed"]
    assert lines[-1]["type"] == "summary" and lines[-1]["stopped_by"] == "truncated recording"


def test_snapshot_from_dict_inverts_to_dict_and_tolerates_missing_and_extra_keys() -> None:
    """Old or newer snapshots load: unknown keys are ignored, missing ones get zero values."""
    snap = snapshot(3)
    assert snapshot_from_dict(snap.to_dict()) == snap
    d = snap.to_dict()
    d["agents"][0]["future_field"] = 1
    del d["agents"][0]["latency_p99_us"]
    d["agents"][1]["heartbeat_age_s"] = None  # how JSON would carry infinity
    back = snapshot_from_dict(d)
    assert back.agents[0].latency_p99_us == 0 and math.isinf(back.agents[1].heartbeat_age_s)


class FakeSwarm:
    """The observer API of an orchestrator, driven by hand."""

    def __init__(self) -> None:
        self.event_handlers: list[Any] = []
        self.status_handlers: list[Any] = []
        self.audit_sinks: list[Any] = []

    def add_event_handler(self, name: str, fn: Any) -> None:
        self.event_handlers.append(fn)

    def add_status_handler(self, fn: Any) -> None:
        self.status_handlers.append(fn)

    def add_audit_sink(self, fn: Any) -> None:
        self.audit_sinks.append(fn)

    def agent_details(self, agent_id: str) -> dict[str, Any]:
        return {"id": agent_id, "type": "echo", "options": {"x": 1}, "restart": "permanent"}


def test_recorder_records_events_snapshots_audit_and_agent_details(tmp_path: Path) -> None:
    """Attached to a swarm, the recorder keeps its events, snapshots, audit records and details."""
    from engine.config import default_config

    swarm = FakeSwarm()
    recorder = Recorder.create(tmp_path / "r.swrec", config=default_config(), available_types=["echo"],
                               settings=RecordingSettings(fsync=False), description="unit test")
    recorder.attach(swarm)
    swarm.event_handlers[0](event("agent_created", T0))
    swarm.status_handlers[0](snapshot(0))
    swarm.audit_sinks[0]({"time": T0, "actor": "ui", "action": "destroy", "target": "echo-1", "outcome": "ok"})
    recorder.close()
    rec = open_recording(tmp_path / "r.swrec")
    assert [e.name for e in rec.events] == ["agent_created"]
    assert len(rec.snapshot_times) == 1
    assert rec.audit[0]["action"] == "destroy"
    assert rec.details[0][1] == "echo-1" and rec.details[0][2]["options"] == {"x": 1}
    assert rec.header["agent_types"] == ["echo"] and rec.header["description"] == "unit test"
    assert rec.header["machine"]["identity_key"]  # the real machine's identity


def test_unwritable_path_raises_recording_error(tmp_path: Path) -> None:
    """A recording that cannot be created fails at once, with the OS reason."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    writer = RecordingWriter(blocker / "sub" / "r.swrec", header=header())
    with pytest.raises(RecordingError, match="cannot write recording"):
        writer.open()
    assert not os.path.exists(blocker / "sub")
