"""Run streaming anomaly detectors over the NAB corpus and score them.

Usage::

    python -m benchmarks.nab --data ../shared/data/nab --out /tmp/nab_out --score
    python -m benchmarks.nab --data ../shared/data/nab --out DIR --detector sentinel --jobs 2

Every ``<data>/data/<category>/<name>.csv`` (columns ``timestamp,value``) is fed,
in order, to a fresh detector as one stream of (value, timestamp) (the batch API: the same kernel as
point-by-point; ``--mode point`` uses ``update()`` per value instead).  Results
go to ``<out>/<category>/<detector>_<name>.csv`` with columns
``timestamp,value,anomaly_score`` -- the layout the NAB scorer reads.  The
detectors never see labels, file length or the file's min/max.

``--score`` then runs the independent scorer (``<data>/../../tools/nab_score.py``
unless ``--scorer`` is given) once per detector and prints the normalised
standard / reward_low_FP_rate / reward_low_FN_rate scores next to published
reference scores.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from engine.anomaly import available_detectors, make_detector
from engine.anomaly.detectors import to_seconds

# Published NAB v1.1 standard-profile scores (NAB scoreboard), for context.
REFERENCE_STANDARD = {
    "ARTime": 74.9,
    "Numenta HTM": 70.5,
    "CAD OSE": 69.9,
    "KNN CAD": 58.0,
    "Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "Windowed Gaussian": 39.6,
}

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


# ----------------------------------------------------------------------------
# Corpus I/O
# ----------------------------------------------------------------------------


def list_corpus(data_dir: str) -> list[str]:
    """Relative paths ``category/name.csv`` of every series under ``data_dir/data``."""
    root = os.path.join(data_dir, "data")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no data/ folder under {data_dir}")
    out = []
    for cat in sorted(os.listdir(root)):
        cdir = os.path.join(root, cat)
        if not os.path.isdir(cdir):
            continue
        for name in sorted(os.listdir(cdir)):
            if name.endswith(".csv"):
                out.append(f"{cat}/{name}")
    return out


def parse_time(text: str) -> float:
    """Seconds since the epoch of a NAB timestamp (naive, read as UTC); NaN if unparsable."""
    try:
        return to_seconds(_dt.datetime.fromisoformat(text.strip()))
    except ValueError:
        return float("nan")


def read_series(path: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Return (timestamp texts, value texts, values, times in epoch seconds)
    of a ``timestamp,value`` CSV."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        try:
            tcol, vcol = header.index("timestamp"), header.index("value")
        except ValueError:
            raise ValueError(f"{path}: expected columns timestamp,value; got {header}") from None
        stamps, texts = [], []
        for row in reader:
            if not row:
                continue
            stamps.append(row[tcol].strip())
            texts.append(row[vcol].strip())
    values = np.array([float(v) if v else np.nan for v in texts], dtype=np.float64)
    times = np.array([parse_time(t) for t in stamps], dtype=np.float64)
    return stamps, texts, values, times


def write_result(path: str, stamps: Sequence[str], texts: Sequence[str], scores: np.ndarray) -> None:
    """Write one NAB results CSV (``timestamp,value,anomaly_score``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["timestamp", "value", "anomaly_score"])
        for t, v, s in zip(stamps, texts, scores.tolist()):
            w.writerow([t, v, repr(float(s))])
    os.replace(tmp, path)


def result_path(out_dir: str, rel: str, detector: str) -> str:
    cat, base = rel.split("/", 1)
    return os.path.join(out_dir, cat, f"{detector}_{base}")


# ----------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------


def _warm(detector: str, params: dict[str, float]) -> None:
    """Trigger numba compilation (or cache load) outside the timed region."""
    d = make_detector(detector, **params)
    d.update_many(np.linspace(0.0, 1.0, 64), np.arange(64) * 300.0)
    d.update(0.5, 64 * 300.0)
    d.update_many(np.linspace(0.0, 1.0, 4))
    d.update(0.5)


def run_file(task: tuple[str, str, str, str, dict[str, float], str]) -> dict[str, Any]:
    """Run one detector over one file; write its result CSV; return timings."""
    data_dir, out_dir, rel, detector, params, mode = task
    _warm(detector, params)
    stamps, texts, values, times = read_series(os.path.join(data_dir, "data", rel))
    det = make_detector(detector, **params)
    t0 = time.perf_counter()
    if mode == "point":
        scores = np.array([det.update(v, t) for v, t in zip(values.tolist(), times.tolist())],
                          dtype=np.float64)
    else:
        scores = det.update_many(values, times)
    secs = time.perf_counter() - t0
    if scores.size and not (np.all(scores >= 0.0) and np.all(scores <= 1.0)):
        raise RuntimeError(f"{detector} produced scores outside [0, 1] on {rel}")
    write_result(result_path(out_dir, rel, detector), stamps, texts, scores)
    return {"file": rel, "detector": detector, "rows": int(values.size), "seconds": secs,
            "max_score": float(scores.max()) if scores.size else 0.0,
            "alarms_0.5": int((scores >= 0.5).sum())}


def run_benchmark(data_dir: str, out_dir: str, detectors: Iterable[str],
                  params: dict[str, dict[str, float]] | None = None, jobs: int = 1,
                  mode: str = "batch", files: Sequence[str] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run every detector over every file; return per-detector totals.

    ``params`` maps detector name -> parameter overrides (experiments only; the
    defaults are the configuration that is reported).
    """
    detectors = list(detectors)
    params = params or {}
    files = list(files) if files is not None else list_corpus(data_dir)
    tasks = [(data_dir, out_dir, rel, d, dict(params.get(d, {})), mode)
             for d in detectors for rel in files]
    totals: dict[str, dict[str, Any]] = {d: {"rows": 0, "seconds": 0.0, "files": 0} for d in detectors}
    t_wall = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results: Iterable[dict[str, Any]] = pool.map(run_file, tasks)
            _collect(results, totals, len(tasks), log)
    else:
        _collect(map(run_file, tasks), totals, len(tasks), log)
    wall = time.perf_counter() - t_wall
    for d, tot in totals.items():
        tot["points_per_s"] = tot["rows"] / tot["seconds"] if tot["seconds"] > 0 else float("inf")
        log(f"{d:<18} {tot['files']} files, {tot['rows']} points, detector time "
            f"{tot['seconds']:.3f} s -> {tot['points_per_s']:.0f} points/s (one process)")
    log(f"wall time {wall:.1f} s (jobs={jobs}, mode={mode})")
    return totals


def _collect(results: Iterable[dict[str, Any]], totals: dict[str, dict[str, Any]],
             ntasks: int, log: Callable[[str], None]) -> None:
    for k, r in enumerate(results, 1):
        t = totals[r["detector"]]
        t["rows"] += r["rows"]
        t["seconds"] += r["seconds"]
        t["files"] += 1
        rate = r["rows"] / r["seconds"] if r["seconds"] > 0 else float("inf")
        log(f"[{k:3d}/{ntasks}] {r['detector']:<18} {r['file']:<58} {r['rows']:6d} rows "
            f"{rate:10.0f} pts/s  max {r['max_score']:.3f}")


# ----------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------


def find_scorer(data_dir: str, scorer: str | None = None) -> str:
    path = scorer or os.path.join(data_dir, os.pardir, os.pardir, "tools", "nab_score.py")
    path = os.path.normpath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"NAB scorer not found at {path} (use --scorer PATH)")
    return path


def score(data_dir: str, out_dir: str, detector: str, scorer: str,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the scorer on ``out_dir`` for ``detector``; return its JSON result."""
    jpath = os.path.join(out_dir, f"{detector}_scores.json")
    cmd = [sys.executable, scorer, "--data", data_dir, "--results", out_dir,
           "--detector", detector, "--json", jpath]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"scorer failed ({proc.returncode}): {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        log(f"  {detector} | {line}")
    with open(jpath) as fh:
        return json.load(fh)


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for item in items:
        key, _, val = item.partition("=")
        det, _, name = key.partition(".")
        if not (det and name and val):
            raise SystemExit(f"--param expects DETECTOR.NAME=VALUE, got {item!r}")
        out.setdefault(det, {})[name] = float(val)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.nab", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="NAB folder (with data/, labels/, config/)")
    ap.add_argument("--out", required=True, help="results folder to write (NAB layout)")
    ap.add_argument("--detector", default="sentinel,windowed_gaussian",
                    help="detector name(s), comma separated; available: {}".format(", ".join(available_detectors())))
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (files in parallel)")
    ap.add_argument("--mode", choices=("batch", "point"), default="batch",
                    help="batch: update_many per file; point: update() per value")
    ap.add_argument("--param", action="append", default=[], metavar="DET.NAME=VALUE",
                    help="override a detector parameter (experiments; not the reported config)")
    ap.add_argument("--score", action="store_true", help="run the NAB scorer afterwards")
    ap.add_argument("--scorer", help="path to nab_score.py (default: <data>/../../tools/nab_score.py)")
    args = ap.parse_args(argv)

    dets = [d.strip() for d in args.detector.split(",") if d.strip()]
    for d in dets:
        if d not in available_detectors():
            ap.error("unknown detector {!r}; available: {}".format(d, ", ".join(available_detectors())))
    params = _parse_params(args.param)
    scorer = find_scorer(args.data, args.scorer) if args.score else None
    totals = run_benchmark(args.data, args.out, dets, params=params, jobs=max(1, args.jobs),
                           mode=args.mode)
    summary: dict[str, Any] = {"detectors": {}, "params": params}
    if scorer:
        for d in dets:
            res = score(args.data, args.out, d, scorer)
            summary["detectors"][d] = {"points_per_s": totals[d]["points_per_s"],
                                       **{p: res[p]["normalized"] for p in PROFILES}}
        print()
        print(f"{'detector':<22} {'standard':>9} {'low_FP':>9} {'low_FN':>9} {'points/s':>12}")
        for d, s in summary["detectors"].items():
            print(f"{d:<22} {s['standard']:9.2f} {s['reward_low_FP_rate']:9.2f} "
                  f"{s['reward_low_FN_rate']:9.2f} {s['points_per_s']:12.0f}")
        print("published (standard): " + ", ".join("{} {:.1f}".format(*kv) for kv in REFERENCE_STANDARD.items()))
        with open(os.path.join(args.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
