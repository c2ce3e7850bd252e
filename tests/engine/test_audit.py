"""The hash-chained audit log: appending, verifying, and detecting tampering and truncation."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from engine.audit import GENESIS, AuditLog, entry_hash, main, verify
from engine.errors import AccessDenied


def fill(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path, fsync=False)
    for i in range(n):
        log.append("ui", "destroy", f"echo-{i}", "ok", exit="stopped")
    return log


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_entries_are_chained_and_verify_ok(tmp_path: Path) -> None:
    """Each entry names the previous entry's hash; the first names the genesis value."""
    path = tmp_path / "audit.log"
    fill(path, 4)
    entries = [json.loads(line) for line in lines(path)]
    assert [e["seq"] for e in entries] == [0, 1, 2, 3]
    assert entries[0]["prev"] == GENESIS
    for before, after in zip(entries, entries[1:]):
        assert after["prev"] == before["hash"]
    for e in entries:
        assert e["hash"] == entry_hash(e)
        assert {"time", "utc", "actor", "action", "target", "outcome", "details"} <= set(e)
    result = verify(path)
    assert result.ok and result.entries == 4 and result.head_checked
    assert "ok, 4 entries, chain intact" in result.summary()


def test_changed_entry_is_detected(tmp_path: Path) -> None:
    """Editing a field of one entry breaks its hash."""
    path = tmp_path / "audit.log"
    fill(path)
    text = lines(path)
    text[2] = text[2].replace('"actor":"ui"', '"actor":"someone-else"')
    path.write_text("\n".join(text) + "\n")
    result = verify(path)
    assert not result.ok and any("line 3: hash mismatch" in p for p in result.problems)


def test_changed_entry_with_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    """Rewriting an entry and its hash is caught by the entry after it."""
    path = tmp_path / "audit.log"
    fill(path)
    text = lines(path)
    entry = json.loads(text[1])
    entry["outcome"] = "denied"
    entry["hash"] = entry_hash(entry)
    text[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(text) + "\n")
    result = verify(path)
    assert not result.ok and any("line 3: does not chain" in p for p in result.problems)


def test_removed_middle_entry_is_detected(tmp_path: Path) -> None:
    """Deleting a line leaves a gap in the sequence and a broken link."""
    path = tmp_path / "audit.log"
    fill(path)
    text = lines(path)
    del text[2]
    path.write_text("\n".join(text) + "\n")
    problems = verify(path).problems
    assert any("sequence number 3, expected 2" in p for p in problems)
    assert any("does not chain" in p for p in problems)


def test_removed_last_entries_are_detected_by_the_head_file(tmp_path: Path) -> None:
    """Truncating whole entries off the end leaves a valid chain, but not the one the head records."""
    path = tmp_path / "audit.log"
    fill(path, 5)
    path.write_text("\n".join(lines(path)[:3]) + "\n")
    result = verify(path)
    assert not result.ok
    assert any("ends at entry 2" in p and "records entry 4" in p for p in result.problems)


def test_file_cut_mid_entry_is_detected(tmp_path: Path) -> None:
    """A torn last line (crash while writing, or truncation) is reported."""
    path = tmp_path / "audit.log"
    fill(path, 3)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    problems = verify(path).problems
    assert any("incomplete last entry" in p for p in problems)


def test_append_after_a_torn_line_continues_the_chain_and_verify_reports_the_tear(tmp_path: Path) -> None:
    """The writer chains on from the last complete entry; the torn line stays visible to verify."""
    path = tmp_path / "audit.log"
    fill(path, 2)
    with open(path, "ab") as f:
        f.write(b'{"seq": 2, "act')
    log = AuditLog(path, fsync=False)
    entry = log.append("api", "pause", "echo-1", "ok")
    assert entry["seq"] == 2 and entry["prev"] == json.loads(lines(path)[1])["hash"]
    problems = verify(path).problems
    assert problems == ["line 3: not a valid entry (an incomplete write or an edit)"]


def _append_many(path: str, who: str, n: int) -> None:
    log = AuditLog(path, fsync=False)
    for i in range(n):
        log.append(who, "priority", f"agent-{i}", "ok", new=i)


def test_two_processes_appending_keep_one_valid_chain(tmp_path: Path) -> None:
    """Appends lock the file and read its tail, so concurrent writers interleave safely."""
    path = tmp_path / "audit.log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), f"p{k}", 25)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = verify(path)
    assert result.ok, result.problems
    assert result.entries == 50


def test_sink_takes_orchestrator_records_including_denials(tmp_path: Path) -> None:
    """The orchestrator's guard audits allowed and denied actions through the sink."""
    from engine._runtime.guard import Guard

    path = tmp_path / "audit.log"
    log = AuditLog(path, fsync=False)
    guard = Guard()
    guard.audit_sinks.append(log.sink)

    def no_kills(actor: str, action: str, target: str) -> None:
        if action == "destroy":
            raise AccessDenied(f"{actor} may not destroy {target}")

    guard.authorizers.append(no_kills)
    guard.authorize("ui", "pause", "echo-1")
    guard.audit("ui", "pause", "echo-1", "ok")
    with pytest.raises(AccessDenied):
        guard.authorize("ui", "destroy", "echo-1")
    entries = [json.loads(line) for line in lines(path)]
    assert [(e["action"], e["outcome"]) for e in entries] == [("pause", "ok"), ("destroy", "denied")]
    assert entries[1]["details"] == {"reason": "ui may not destroy echo-1"}
    assert verify(path).ok


def test_verify_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0 intact, 1 tampered, 2 unreadable or bad usage -- with a one-line verdict."""
    path = tmp_path / "audit.log"
    fill(path, 3)
    assert main(["verify", str(path)]) == 0
    assert "chain intact" in capsys.readouterr().out
    path.write_text(path.read_text().replace('"echo-1"', '"echo-9"'))
    assert main(["verify", str(path)]) == 1
    assert "NOT INTACT" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing.log")]) == 2
    assert "cannot read audit log" in capsys.readouterr().err
    assert main(["check"]) == 2


def test_swarm_tui_audit_verify_dispatches_without_the_ui(tmp_path: Path) -> None:
    """``swarm-tui audit verify FILE`` works as a subcommand (and does not start the TUI)."""
    path = tmp_path / "audit.log"
    fill(path, 2)
    code = ("import sys; from swarm_tui.cli import main; rc = main(['audit', 'verify', sys.argv[1]]);"
            "print('textual loaded' if 'textual' in sys.modules else 'no textual'); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "ok, 2 entries" in proc.stdout and "no textual" in proc.stdout


def test_replay_start_is_audited_with_its_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Starting a replay appends ``replay_start`` (ok, or error with the reason)."""
    from engine.headless import run_replay
    from tests.recording_fixtures import write_recording

    path = tmp_path / "audit.log"
    log = AuditLog(path, fsync=False)
    write_recording(tmp_path / "run.swrec", seconds=3)
    assert run_replay(str(tmp_path / "run.swrec"), audit=log) == 0
    assert run_replay(str(tmp_path / "missing.swrec"), audit=log) == 2
    capsys.readouterr()
    entries = [json.loads(line) for line in lines(path)]
    assert [(e["action"], e["outcome"]) for e in entries] == [("replay_start", "ok"), ("replay_start", "error")]
    assert entries[0]["actor"] == "cli" and entries[0]["details"]["format_version"] == 1
    assert "cannot open recording" in entries[1]["details"]["error"]
    assert verify(path).ok


def test_config_load_is_audited_even_when_it_fails(tmp_path: Path) -> None:
    """A configuration that does not load is refused and the attempt is audited."""
    bad = tmp_path / "bad.toml"
    bad.write_text("max_agents = 0\n")
    path = tmp_path / "audit.log"
    proc = subprocess.run([sys.executable, "-m", "engine", "--config", str(bad), "--audit-log", str(path)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 2 and "max_agents" in proc.stderr
    entry = json.loads(lines(path)[-1])
    assert (entry["action"], entry["outcome"], entry["target"]) == ("config_load", "error", str(bad))
    assert "max_agents" in entry["details"]["error"]
