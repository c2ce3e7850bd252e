"""Shared fixtures: fast test configurations and a check that no test leaks shared memory."""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest

from engine._shm.segments import list_segments


@pytest.fixture(autouse=True)
def no_shared_memory_left_behind() -> Any:
    """Every test must leave no swarm segment owned by this process in /dev/shm."""
    mine = f"swarm-{os.getpid()}-"
    before = set(list_segments(mine))
    yield
    leaked = sorted(set(list_segments(mine)) - before)
    for name in leaked:  # clean up so one leak does not fail every later test
        try:
            os.unlink(f"/dev/shm/{name}")
        except OSError:
            pass
    assert not leaked, f"test left shared-memory segments behind: {leaked}"


TEST_AGENTS = {
    "counter": "tests.swarm_test_agents:CounterAgent",
    "async_cycle": "tests.swarm_test_agents:AsyncCycleAgent",
    "crash_on_start": "tests.swarm_test_agents:CrashOnStartAgent",
    "cycle_crash": "tests.swarm_test_agents:CycleCrashAgent",
    "segfault": "tests.swarm_test_agents:SegfaultAgent",
}


def fast_config_data(**overrides: Any) -> dict[str, Any]:
    """A configuration mapping with short timeouts, no default agents, and the test agents."""
    data: dict[str, Any] = {
        "max_agents": 8,
        "channel_size": 65536,
        "monitoring_interval": 0.2,
        "optimization_interval": 60.0,
        "auto_scaling": False,
        "supervisor": {
            "heartbeat_interval": 0.05,
            "heartbeat_timeout": 1.0,
            "shutdown_timeout": 2.0,
            "kill_timeout": 1.0,
            "checkpoint_interval": 0.1,
            "backoff_initial": 0.01,
            "backoff_max": 0.2,
            "max_restarts": 5,
            "max_seconds": 30.0,
        },
        "agents": {name: {"count": 0} for name in
                   ("compute", "resource", "thermal", "optimization", "fault_tolerance", "learning")},
        "custom_agents": {name: {"import_path": path} for name, path in TEST_AGENTS.items()},
        "security": {"allowed_agent_modules": ["tests"]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


@pytest.fixture
def make_config() -> Callable[..., Any]:
    """Build a validated ``SwarmConfig`` from :func:`fast_config_data` plus overrides."""
    from engine.config import config_from_mapping

    def factory(**overrides: Any) -> Any:
        return config_from_mapping(fast_config_data(**overrides), "test-config")

    return factory
