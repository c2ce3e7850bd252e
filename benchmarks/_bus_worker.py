"""Worker process of the bus benchmark: one of two roles, pinned to one core.

Role ``a`` drives (pings, sends); role ``b`` answers (echoes, receives).  The
phases are separated by a barrier so both sides start each phase together:

1. round trip: ``warmup`` + ``rt_n`` ping-pongs of a 64-byte message, each
   timed by ``a`` with ``perf_counter_ns`` (send until the reply is in hand);
2. one-way throughput at 64 B, then at 4 KiB: ``a`` sends numbered messages,
   ``b`` checks every number in order; rate = messages / (``b``'s last receive
   - ``a``'s start) on the shared ``CLOCK_MONOTONIC``; CPU seconds per side are
   ``time.process_time`` deltas (all threads) up to the end-of-phase barrier;
3. idle: ``b`` blocks in ``recv`` for ``idle_s`` seconds; its CPU time over that
   wall time is the idle cost.
"""

from __future__ import annotations

import faulthandler
import os
import struct
import time
import traceback
from typing import Any

from benchmarks._bus_transports import TRANSPORTS, Endpoint

SEQ = struct.Struct("<Q")


def run_role(role: str, tname: str, spec: Any, params: dict[str, Any], barrier: Any, results: Any) -> None:
    """Entry point of a spawned worker; puts ``(role, dict)`` on ``results``."""
    out: dict[str, Any] = {}
    ep: Endpoint | None = None
    faulthandler.dump_traceback_later(params.get("deadline_s", 600.0), exit=True)
    try:
        core = params["cores"][0 if role == "a" else 1]
        if core is not None:
            os.sched_setaffinity(0, {core})
        ep = TRANSPORTS[tname].endpoint(spec, role)
        barrier.wait()
        if role == "a":
            out.update(_rt_driver(ep, params["warmup"], params["rt_n"]))
        else:
            _rt_echo(ep, params["warmup"] + params["rt_n"])
        for size, n, key in ((64, params["n_64"], "64"), (4096, params["n_4k"], "4k")):
            msgs = _messages(n, size) if role == "a" else None
            barrier.wait()
            cpu0 = time.process_time()
            if role == "a":
                out[f"t0_{key}"] = time.monotonic_ns()
                _send_all(ep, msgs, 256 if size <= 64 else 32)  # type: ignore[arg-type]
            else:
                out[f"t_end_{key}"], out[f"seq_errors_{key}"] = _recv_all(ep, n)
            barrier.wait()
            out[f"cpu_{key}"] = time.process_time() - cpu0
            del msgs
        barrier.wait()
        if role == "a":
            time.sleep(params["idle_s"])
            ep.send(b"wake")
        else:
            w0, c0 = time.monotonic(), time.process_time()
            got = ep.recv()
            c1, w1 = time.process_time(), time.monotonic()
            out["idle_cpu_percent"] = 100.0 * (c1 - c0) / max(w1 - w0, 1e-9)
            out["idle_ok"] = got == b"wake"
        barrier.wait()
    except BaseException:
        out["error"] = traceback.format_exc()
        try:
            barrier.abort()
        except Exception:
            pass
    finally:
        if ep is not None:
            try:
                ep.close()
            except Exception:
                out.setdefault("close_error", traceback.format_exc())
        results.put((role, out))


def _rt_driver(ep: Endpoint, warmup: int, n: int) -> dict[str, Any]:
    filler = bytes(56)
    msgs = [SEQ.pack(i) + filler for i in range(warmup + n)]
    send, recv = ep.send, ep.recv
    for i in range(warmup):
        send(msgs[i])
        recv()
    lat = [0] * n
    bad = 0
    clock = time.perf_counter_ns
    for i in range(n):
        m = msgs[warmup + i]
        t0 = clock()
        send(m)
        r = recv()
        lat[i] = clock() - t0
        if r != m:
            bad += 1
    lat.sort()

    def pct(q: float) -> float:
        return lat[min(n - 1, int(q * n))] / 1000.0

    return {"rt_p50_us": pct(0.5), "rt_p99_us": pct(0.99), "rt_p999_us": pct(0.999), "rt_bad": bad}


def _rt_echo(ep: Endpoint, n: int) -> None:
    send, recv = ep.send, ep.recv
    for _ in range(n):
        send(recv())


def _messages(n: int, size: int) -> list[bytes]:
    filler = bytes(size - 8)
    return [SEQ.pack(i) + filler for i in range(n)]


def _send_all(ep: Endpoint, msgs: list[bytes], chunk: int) -> None:
    send_many = ep.send_many
    for i in range(0, len(msgs), chunk):
        send_many(msgs[i : i + chunk])


def _recv_all(ep: Endpoint, n: int) -> tuple[int, int]:
    expected = 0
    errors = 0
    unpack = SEQ.unpack_from
    recv_many = ep.recv_many
    while expected < n:
        for m in recv_many():
            if unpack(m)[0] != expected:
                errors += 1
            expected += 1
    return time.monotonic_ns(), errors
