"""Supervisor rules that need no process: backoff and exit descriptions."""

from __future__ import annotations

import random
import signal
from typing import Any

from engine._runtime.supervisor import Supervisor, describe_exit


def make_supervisor(make_config: Any, **supervisor: Any) -> Supervisor:
    cfg = make_config(supervisor=supervisor)
    return Supervisor(config=cfg.supervisor, mp_context=None, table=None,  # type: ignore[arg-type]
                      make_launch=None, emit=None, drain_reports=None,  # type: ignore[arg-type]
                      rng=random.Random(7))


def test_backoff_grows_exponentially_and_is_capped(make_config: Any) -> None:
    """Delay = initial * multiplier**n within the jitter band, never above backoff_max (+jitter)."""
    sup = make_supervisor(make_config, backoff_initial=0.1, backoff_multiplier=2.0, backoff_max=1.0,
                          backoff_jitter=0.2)
    for n, base in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)]:
        delays = [sup.backoff_delay(n) for _ in range(200)]
        assert all(base * 0.8 - 1e-9 <= d <= base * 1.2 + 1e-9 for d in delays), (n, min(delays), max(delays))
        assert max(delays) - min(delays) > base * 0.2  # jitter really spreads them


def test_no_jitter_gives_exact_delays(make_config: Any) -> None:
    """With backoff_jitter = 0 the delay is exact."""
    sup = make_supervisor(make_config, backoff_initial=0.05, backoff_multiplier=3.0, backoff_max=2.0,
                          backoff_jitter=0.0)
    assert [round(sup.backoff_delay(n), 6) for n in range(4)] == [0.05, 0.15, 0.45, 1.35]


def test_exit_descriptions_name_the_signal() -> None:
    """Exit codes become words a user understands."""
    assert describe_exit(0) == "exited normally"
    assert describe_exit(1) == "exited with status 1"
    assert "SIGKILL" in describe_exit(-signal.SIGKILL)
    assert "CPU time limit" in describe_exit(-signal.SIGXCPU)
    assert "SIGUSR1" in describe_exit(-signal.SIGUSR1)
