"""The short CI configuration of the load and chaos test (issue 8).

Runs ``tests/load_test.py`` as its own process -- 8 agents (7 compute + 1 flooder),
20 s of real compute tasks over the bus, a SIGKILL every 2 s on average and a hang
now and then -- and checks the verdict and the summary.  About 30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_short_load_run_loses_nothing_and_leaks_nothing(tmp_path: Path) -> None:
    """8 agents, 20 s, kills every 2 s, hangs, a flood: every task once, no leak, recoveries."""
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(ROOT / "tests" / "load_test.py"), "--agents", "8", "--duration", "20",
           "--kill-rate", "0.5", "--hang-rate", "0.1", "--flood", "--seed", "7", "--json", str(out),
           "--quiet", "--grace", "15"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=110)
    assert out.exists(), f"no summary written; stderr:\n{proc.stderr[-3000:]}"
    summary = json.loads(out.read_text())
    assert proc.returncode == 0, f"load test failed: {summary.get('failures')}\n{proc.stdout}"
    assert summary["ok"] is True and summary["failures"] == []
    tasks = summary["tasks"]
    assert tasks["submitted"] > 100 and tasks["lost"] == 0
    assert tasks["completed"] == tasks["submitted"]
    assert summary["kills"]["count"] >= 3
    assert summary["kills"]["recovery_s"]["count"] == summary["kills"]["count"]
    assert summary["kills"]["recovery_s"]["median"] < 10
    assert summary["agents_given_up"] == [] and summary["unrecovered"] == []
    res = summary["resources"]
    assert res["shm_leaked"] == [] and res["fds_end"] <= res["fds_start"]
    assert summary["orchestrator_died"] == []
    # the flood ran and the others still got their tasks through
    fair = summary["fairness"]
    assert fair["flooder"]["sent"] > 1000
    assert fair["task_latency_ms_during_flood_other_agents"]["count"] > 0
    assert summary["bus_latency_us"]["others"]["latency_p50_us"] is not None


def test_load_test_rejects_bad_arguments() -> None:
    """Bad arguments are a usage error (exit 2), before anything starts."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "load_test.py"), "--agents", "0"],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=180)
    assert proc.returncode == 2
    assert "--agents" in proc.stderr


def test_a_flooding_producer_does_not_starve_another() -> None:
    """Per-sender fairness in one mailbox: with a flooder's lane full, another sender's frames
    are handed out every other frame (the receiver rotates the producers of a lane)."""
    from engine._shm.segments import new_swarm_prefix
    from engine.channels import ChannelEmpty, ChannelFull, Lane, Mailbox

    mb = Mailbox.create(f"{new_swarm_prefix()}-fair", producers=3, lane_bytes=65536)
    flood, calm = mb.sender(1, send_timeout=0), mb.sender(2, send_timeout=0)
    rx = mb.receiver(spin_us=0, sleep_s=0.005)
    try:
        queued = 0
        while True:  # fill the flooder's NORMAL ring to the brim
            try:
                flood.send(b"F" * 64, msg_type=1, lane=Lane.NORMAL, recipient=0)
                queued += 1
            except ChannelFull:
                break
        assert queued > 400
        positions = []
        for i in range(50):
            calm.send(b"C%d" % i, msg_type=1, lane=Lane.NORMAL, recipient=0)
            for pos in range(1, 10):
                f = rx.receive_nowait()
                rx.ack(f)
                if f.sender == 2:
                    positions.append(pos)
                    break
            flood.send(b"F" * 64, msg_type=1, lane=Lane.NORMAL, recipient=0)  # keep the flood full
        assert max(positions) <= 2, positions  # never more than one flood frame ahead of it
        while True:
            try:
                rx.ack(rx.receive_nowait())
            except ChannelEmpty:
                break
    finally:
        rx.close()
        flood.close()
        calm.close()
        mb.close()
        mb.unlink()
