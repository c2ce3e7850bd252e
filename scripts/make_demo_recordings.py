"""Regenerate the bundled demo recordings in ``swarm_tui/demos/`` with the app itself.

    python scripts/make_demo_recordings.py [--only burst chaos] [--out swarm_tui/demos]

Each scenario of ``engine.demo`` runs live, headless, exactly as a user would run it
(``python -m engine --demo NAME --record FILE``) from a scratch directory, so the
built-in default configuration applies whatever ``swarm.toml`` is around.  Finite
scenarios stop when their script ends; ``default`` runs for ``--default-duration``
seconds.  Each run's summary line and the file size are printed; a failed run keeps
the previous recording.  The machine's load shows in the recordings (they are real
runs): make them on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.demo import scenario_names
from engine.recording import FILE_SUFFIX, open_recording


def record(name: str, out_dir: Path, default_duration: float) -> bool:
    """Run scenario ``name`` and move its recording into ``out_dir``; True on success."""
    with tempfile.TemporaryDirectory(prefix=f"demo-{name}-") as scratch:
        target = Path(scratch) / f"{name}{FILE_SUFFIX}"
        cmd = [sys.executable, "-m", "engine", "--demo", name, "--record", str(target), "--log-level", "ERROR"]
        if name == "default":
            cmd += ["--duration", str(default_duration)]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        print(f"{name}: {' '.join(cmd[1:])}", flush=True)
        proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{name}: FAILED (exit {proc.returncode})\n{proc.stderr}", file=sys.stderr)
            return False
        rec = open_recording(target)
        if rec.truncated or rec.warnings:
            print(f"{name}: FAILED: the recording has problems: {rec.warnings}", file=sys.stderr)
            return False
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / target.name
        shutil.move(str(target), final)
        summary = [line for line in proc.stdout.splitlines() if line.startswith("summary:")]
        print(f"{name}: {final.relative_to(ROOT) if final.is_relative_to(ROOT) else final} "
              f"{final.stat().st_size} bytes; {rec.describe()}")
        print(f"{name}: {summary[-1] if summary else '(no summary)'}", flush=True)
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=scenario_names(), help="scenarios to record (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "swarm_tui" / "demos", help="output directory")
    parser.add_argument("--default-duration", type=float, default=30.0,
                        help="seconds to record the open-ended 'default' scenario (default 30)")
    args = parser.parse_args(argv)
    ok = [record(name, args.out.resolve(), args.default_duration) for name in (args.only or scenario_names())]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
