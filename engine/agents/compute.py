"""``ComputeAgent``: runs numba kernels on request and in the background, and measures them.

Messages it answers (requests; the reply is the return value):

* ``execute_workload`` -- payload ``{"kernel": name, "n": size, "params": {...},
  "repeats": 3, "max_seconds": None, "seed": 0, "device": "auto"}``; ``n`` may be
  omitted for the agent's configured kernel (``task_id``, added by
  ``Orchestrator.submit_task``, is echoed back).  Runs
  :func:`engine.kernels.run_workload` (or the CUDA path, see below) and replies
  ``{"ok": True, "agent_id", "name", "n", "params", "seconds", "gflops", "gbps",
  "checksum", "repeats", "device", "wall_s"}``, or ``{"ok": False, "error": ...}``.
* ``apply_config`` -- payload ``{"kernel": name, "params": {...}}`` (what the
  optimization agent sends after tuning): later runs of that kernel use these
  parameters unless a request names its own.  Checked at once (unknown parameter
  names are refused; for the background kernel one trial run is made and its
  measurement is in the reply).  Kept across restarts (checkpointed).
* ``compute_status`` -- the dict this agent publishes under the ``compute`` topic.

Background work: while no request is waiting, every cycle repeats the configured
kernel for at most ``slice_s`` seconds, so the runtime's duty-cycle stretching (a
cycle that took *t* is followed by a rest of *t (1-d)/d*) throttles it smoothly.
A request's compute time is throttled too: it leaves a rest of the same length
that the next request or background cycle waits out first.

Start-up: :func:`engine.kernels.warm_up` compiles or loads every kernel from numba's
on-disk cache, with a heartbeat and the ``warmup`` gauge after each kernel, then one
``kernel_warmup`` event says how long it took and where the code came from.

CUDA: used for triad and jacobi only when :func:`engine.kernels.cuda.cuda_available`
says so (and ``use_cuda``); otherwise the reason is published (``cuda_reason``).

Gauges: ``gbps`` (GB/s) and ``gflops`` (GFLOP/s) of the last run, ``run_ms`` (one
kernel run, ms), ``tasks`` (background cycles + requests done), ``requests``
(``execute_workload`` requests served), ``warmup`` (% of kernels ready).
"""

from __future__ import annotations

import time
from typing import Any

from engine.agents.base import BaseAgent
from engine.communicator import Message
from engine.errors import ChannelError
from engine.kernels import KernelError, get_inputs, get_kernel, run_workload, warm_up

#: How often the ``compute`` topic is published while running (seconds).
PUBLISH_INTERVAL_S = 1.0
#: CUDA versions exist for these kernels.
CUDA_KERNELS = ("triad", "jacobi")
_REQUEST_KEYS = frozenset({"kernel", "name", "n", "size", "params", "repeats", "max_seconds", "seed", "device",
                           "task_id"})  # task_id: added by Orchestrator.submit_task, echoed back


class ComputeAgent(BaseAgent):
    """Runs compute kernels (see the module docstring)."""

    agent_type = "compute"
    key_metric = "gflops"

    def __init__(self, agent_id: str = "", *, kernel: str = "triad", size: int = 1_000_000,
                 threads: int = 0, background: bool = True, slice_s: float = 0.1,
                 use_cuda: bool = True, **options: Any) -> None:
        super().__init__(agent_id, kernel=kernel, size=size, threads=threads, background=background,
                         slice_s=slice_s, use_cuda=use_cuda, **options)
        get_kernel(kernel)  # an unknown kernel fails at construction, with the known names
        self.kernel = kernel
        self.size = int(size)
        self.threads = int(threads)
        self.background = bool(background)
        self.slice_s = float(slice_s)
        self.use_cuda = bool(use_cuda)
        self.background_n = self.size
        self.size_note = ""
        self.tuned: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.cycles_done = 0
        self.failures = 0
        self.last: dict[str, Any] | None = None
        self.warmup: dict[str, Any] = {}
        self.cuda_ok = False
        self.cuda_reason = "not probed yet"
        self._busy = False  # a request was served since the last cycle
        self._rest_until = 0.0
        self._next_publish = 0.0

    # --- start-up ---------------------------------------------------------------------

    def on_start(self) -> None:
        """Warm the kernels up (with progress), probe CUDA, size the background slice."""
        self.set_gauge("warmup", 0.0)
        self.set_gauge("gbps", 0.0)
        self.set_gauge("gflops", 0.0)
        self.set_gauge("tasks", 0.0)
        self.set_gauge("requests", float(self.requests))
        self.set_gauge("run_ms", 0.0)
        self.context.heartbeat()
        started = time.perf_counter()
        import numba  # noqa: F401  (the slowest import: a heartbeat after it)

        self.context.heartbeat()

        def progress(name: str, done: int, total: int) -> None:
            self.set_gauge("warmup", round(100.0 * done / total, 1))
            self.context.heartbeat()
            self.context.log.info("warm-up: %s ready (%d/%d)", name, done, total)

        results = warm_up(progress=progress)
        elapsed = time.perf_counter() - started
        sources = {name: r.source for name, r in results.items()}
        compiled = sorted(n for n, s in sources.items() if s == "compiled")
        self.warmup = {"seconds": round(elapsed, 3), "sources": sources,
                       "per_kernel_s": {n: round(r.seconds, 3) for n, r in results.items()}}
        self.emit_event(
            "kernel_warmup",
            f"{len(results)} kernels ready in {elapsed:.2f} s "
            + (f"(compiled: {', '.join(compiled)})" if compiled else "(from numba's disk cache)"),
            seconds=round(elapsed, 3), sources=sources,
        )
        self._probe_cuda()
        self.context.heartbeat()
        if self.background:
            self._size_background()
        self._publish(force=True)

    def _probe_cuda(self) -> None:
        if not self.use_cuda:
            self.cuda_ok, self.cuda_reason = False, "disabled by configuration (use_cuda = false)"
            return
        try:
            from engine.kernels.cuda import cuda_available

            self.cuda_ok, self.cuda_reason = cuda_available()
        except Exception as exc:  # noqa: BLE001  (an optional GPU path must never stop the agent)
            self.cuda_ok, self.cuda_reason = False, f"unavailable: {type(exc).__name__}: {exc}"
        if not self.cuda_ok:
            self.context.log.info("CUDA not used: %s", self.cuda_reason)

    @property
    def cuda_simulated(self) -> bool:
        """True under ``NUMBA_ENABLE_CUDASIM=1`` (CUDA runs, but in the slow simulator)."""
        return self.cuda_ok and self.cuda_reason.startswith("simulator")

    def _device_for(self, kernel: str) -> str:
        try:
            return "cuda" if self._use_cuda_for(kernel, "auto") else "cpu"
        except KernelError:
            return "cpu"

    def _size_background(self) -> None:
        """Halve ``n`` until one run of the background kernel fits in ``slice_s``."""
        n = self.size
        for _ in range(40):
            result = self._run(self.kernel, n, self._params_for(self.kernel), repeats=1, max_seconds=None,
                               seed=0, device="auto")
            self.context.heartbeat()
            if result["seconds"] <= self.slice_s or n <= 1:
                break
            n = max(1, n // 2)
        if n != self.size:
            self.size_note = (f"size {self.size} takes longer than slice_s={self.slice_s:g} s a run; "
                              f"background work uses n={n}")
            self.context.log.info(self.size_note)
        self.background_n = n

    # --- work -------------------------------------------------------------------------

    def _params_for(self, kernel: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = get_kernel(kernel)
        params: dict[str, Any] = {}
        if self.threads and "threads" in spec.default_params:
            params["threads"] = self.threads
        params.update(self.tuned.get(kernel, {}))
        params.update(extra or {})
        return params

    def _use_cuda_for(self, kernel: str, device: str) -> bool:
        if device not in ("auto", "cpu", "cuda"):
            raise KernelError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if device == "cuda" and not (self.cuda_ok and kernel in CUDA_KERNELS):
            why = self.cuda_reason if not self.cuda_ok else f"no CUDA version of {kernel!r}"
            raise KernelError(f"CUDA requested but not possible: {why}")
        if device == "cuda":
            return True
        # "auto" never picks numba's CUDA simulator: it is for correctness, not speed
        return device == "auto" and self.cuda_ok and not self.cuda_simulated and kernel in CUDA_KERNELS

    def _run(self, kernel: str, n: int, params: dict[str, Any], *, repeats: int,
             max_seconds: float | None, seed: int, device: str) -> dict[str, Any]:
        started = time.perf_counter()
        if self._use_cuda_for(kernel, device):
            out = self._run_cuda(kernel, n, params, repeats, max_seconds, seed)
        else:
            out = run_workload(kernel, n, params, repeats, max_seconds=max_seconds, seed=seed).to_dict()
            out["device"] = "cpu"
        out["wall_s"] = round(time.perf_counter() - started, 6)
        return out

    def _run_cuda(self, kernel: str, n: int, params: dict[str, Any], repeats: int,
                  max_seconds: float | None, seed: int) -> dict[str, Any]:
        from engine.kernels import cuda

        spec = get_kernel(kernel)
        merged = spec.resolve_params(params)
        inputs = get_inputs(kernel, n, seed)
        if kernel == "triad":
            def call() -> Any:
                return cuda.triad_cuda(inputs["b"], inputs["c"], inputs["s"])
        else:
            def call() -> Any:
                return cuda.jacobi_cuda(inputs["u0"], int(merged["iters"]))
        call()  # compile and first transfer outside the timing
        times: list[float] = []
        result: Any = None
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            result = call()
            times.append(time.perf_counter() - t0)
            if max_seconds is not None and sum(times) >= max_seconds:
                break
        times.sort()
        seconds = max(times[len(times) // 2], 1e-12)
        return {"name": kernel, "n": int(n), "params": merged, "seconds": seconds,
                "gflops": spec.flops(n, merged) / seconds / 1e9,
                "gbps": spec.bytes_moved(n, merged) / seconds / 1e9,
                "checksum": spec.checksum(result), "repeats": len(times), "device": "cuda"}

    def _record(self, result: dict[str, Any], source: str) -> None:
        self.last = {**result, "source": source}
        self.task_done()
        self.set_gauge("gbps", float(result["gbps"]))
        self.set_gauge("gflops", float(result["gflops"]))
        self.set_gauge("run_ms", round(float(result["seconds"]) * 1000.0, 4))
        self.set_gauge("tasks", float(self.cycles_done + self.requests))
        self.set_gauge("requests", float(self.requests))

    def _wait_rest(self) -> None:
        """Wait out the rest a throttled request left behind (heartbeating)."""
        while True:
            left = self._rest_until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
            self.context.heartbeat()

    def _leave_rest(self, busy_s: float) -> None:
        duty = self.duty_cycle
        if duty < 1.0:
            self._rest_until = time.monotonic() + busy_s * (1.0 - duty) / duty

    def execute_cycle(self) -> None:
        """One background slice of the configured kernel, unless requests kept it busy."""
        if self._busy:  # requests were served since the last cycle: they are the work
            self._busy = False
            self._publish()
            return
        if not self.background or time.monotonic() < self._rest_until:
            self._publish()
            return
        params = self._params_for(self.kernel)
        try:
            result = self._run(self.kernel, self.background_n, params, repeats=1_000_000,
                               max_seconds=self.slice_s, seed=0, device="auto")
        except KernelError as exc:
            if self.kernel not in self.tuned:
                raise  # the configuration itself is bad: crash and say why
            dropped = self.tuned.pop(self.kernel)
            self.failures += 1
            self.emit_event("kernel_config_rejected", f"tuned parameters {dropped} for {self.kernel} "
                            f"failed ({exc}); back to the defaults", severity="warning",
                            kernel=self.kernel, params=dropped, error=str(exc))
            return
        self.cycles_done += 1
        self._record(result, "background")
        self._publish()

    # --- messages -----------------------------------------------------------------------

    def handle_message(self, message: Message) -> Any:
        """``execute_workload``, ``apply_config`` and ``compute_status`` (see the module docstring)."""
        kind = message.message_type
        if kind == "execute_workload":
            return self._execute_workload(message.payload)
        if kind == "apply_config":
            return self._apply_config(message.payload)
        if kind == "compute_status":
            return self.status()
        if message.expects_reply:
            return {"ok": False, "agent_id": self.agent_id,
                    "error": f"unknown message type {kind!r}; this compute agent answers "
                             "execute_workload, apply_config and compute_status"}
        return None

    def _execute_workload(self, payload: Any) -> dict[str, Any]:
        self._busy = True
        try:
            if not isinstance(payload, dict):
                raise KernelError(f"execute_workload needs a dict payload, got {type(payload).__name__}")
            unknown = sorted(set(payload) - _REQUEST_KEYS)
            if unknown:
                raise KernelError(f"unknown keys {unknown}; allowed: {sorted(_REQUEST_KEYS)}")
            kernel = str(payload.get("kernel") or payload.get("name") or self.kernel)
            get_kernel(kernel)
            n_value = payload.get("n", payload.get("size"))
            if n_value is None:
                if kernel != self.kernel:
                    raise KernelError(f"'n' is required for kernel {kernel!r} (the agent's own kernel is "
                                      f"{self.kernel!r})")
                n_value = self.size
            if isinstance(n_value, bool) or not isinstance(n_value, int) or n_value < 1:
                raise KernelError(f"'n' must be a positive integer, got {n_value!r}")
            repeats = payload.get("repeats", 3)
            if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
                raise KernelError(f"'repeats' must be a positive integer, got {repeats!r}")
            max_seconds = payload.get("max_seconds")
            if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
                raise KernelError(f"'max_seconds' must be a positive number, got {max_seconds!r}")
            params = payload.get("params") or {}
            if not isinstance(params, dict):
                raise KernelError(f"'params' must be a table, got {type(params).__name__}")
            seed = payload.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
                raise KernelError(f"'seed' must be an integer from 0 to 2**63-1, got {seed!r}")
            self._wait_rest()
            result = self._run(kernel, n_value, self._params_for(kernel, params), repeats=repeats,
                               max_seconds=max_seconds, seed=seed,
                               device=str(payload.get("device", "auto")))
        except (KernelError, ValueError, TypeError) as exc:
            self.failures += 1
            return {"ok": False, "agent_id": self.agent_id, "error": str(exc)}
        self.requests += 1
        self._leave_rest(float(result["seconds"]) * int(result["repeats"]))
        self._record(result, "request")
        self._publish()
        out = {"ok": True, "agent_id": self.agent_id, **result, "duty_cycle": self.duty_cycle}
        if "task_id" in payload:
            out["task_id"] = payload["task_id"]
        return out

    def _apply_config(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("params", {}), dict):
            return {"ok": False, "agent_id": self.agent_id,
                    "error": "apply_config needs {'kernel': name, 'params': {...}}"}
        kernel = str(payload.get("kernel") or self.kernel)
        params = dict(payload.get("params") or {})
        try:
            merged = get_kernel(kernel).resolve_params(params)
            trial = None
            if kernel == self.kernel:  # prove it runs before the background uses it
                trial = self._run(kernel, self.background_n, self._params_for(kernel, params), repeats=1,
                                  max_seconds=None, seed=0, device="auto")
        except (KernelError, ValueError, TypeError) as exc:
            return {"ok": False, "agent_id": self.agent_id, "error": str(exc)}
        self.tuned[kernel] = params
        self.context.log.info("applied tuned parameters for %s: %s", kernel, params)
        self._publish(force=True)
        return {"ok": True, "agent_id": self.agent_id, "kernel": kernel, "params": merged,
                "trial": trial}

    # --- reporting ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the ``compute`` topic carries."""
        last = None
        if self.last is not None:
            last = {k: self.last.get(k) for k in ("name", "n", "seconds", "gflops", "gbps", "repeats",
                                                  "device", "source")}
        return {
            "kernel": self.kernel, "size": self.size, "background": self.background,
            "background_n": self.background_n, "size_note": self.size_note, "slice_s": self.slice_s,
            "threads": self.threads, "params": self._params_for(self.kernel), "tuned": self.tuned,
            "duty_cycle": self.duty_cycle, "requests": self.requests, "cycles": self.cycles_done,
            "failures": self.failures, "last": last, "warmup": self.warmup,
            "cuda": {"available": self.cuda_ok, "reason": self.cuda_reason,
                     "used": self._device_for(self.kernel) == "cuda"},
            "device": self._device_for(self.kernel),
        }

    def _publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_publish:
            return
        self._next_publish = now + PUBLISH_INTERVAL_S
        try:
            self.publish("compute", self.status())
        except ChannelError as exc:  # the orchestrator's inbox is full: skip this one
            self.context.log.warning("compute status not published: %s", exc)

    def on_throttle(self, duty_cycle: float) -> None:
        """Publish the new duty at once (the runtime applies it to the cycles); full duty
        cancels a rest left by a throttled request."""
        if duty_cycle >= 1.0:
            self._rest_until = 0.0
        self._publish(force=True)

    def snapshot(self) -> Any:
        """Tuned parameters and counters survive a restart."""
        return {"tuned": self.tuned, "requests": self.requests, "cycles": self.cycles_done}

    def restore(self, state: Any) -> None:
        """Continue with the tuned parameters of the previous incarnation."""
        if isinstance(state, dict):
            self.tuned = {str(k): dict(v) for k, v in (state.get("tuned") or {}).items() if isinstance(v, dict)}
            self.requests = int(state.get("requests", 0))
            self.cycles_done = int(state.get("cycles", 0))
