"""Agent type registry: built-in type names and custom types loaded by import path.

Built-in types are listed by import path so nothing is imported until an agent of
that type starts (the forkserver preloads the modules, so that costs nothing later).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from typing import TYPE_CHECKING

from engine.errors import UnknownAgentType

if TYPE_CHECKING:  # pragma: no cover
    from engine.agents.base import BaseAgent

BUILTIN_AGENTS: dict[str, str] = {
    "echo": "engine.agents.echo:EchoAgent",
    "compute": "engine.agents.compute:ComputeAgent",
    "resource": "engine.agents.resource:ResourceAgent",
    "thermal": "engine.agents.thermal:ThermalAgent",
    "optimization": "engine.agents.optimization:OptimizationAgent",
    "fault_tolerance": "engine.agents.fault_tolerance:FaultToleranceAgent",
    "learning": "engine.agents.learning:LearningAgent",
}

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


def builtin_types() -> list[str]:
    """Names of the built-in agent types whose module is installed."""
    return sorted(name for name, path in BUILTIN_AGENTS.items() if _module_exists(path.split(":")[0]))


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def load_agent_class(import_path: str) -> "type[BaseAgent]":
    """Import ``"package.module:ClassName"`` and check it is a ``BaseAgent`` subclass.

    Raises:
        UnknownAgentType: the path is malformed, the module or class does not exist,
            or the class is not a ``BaseAgent``; the message says which.
    """
    from engine.agents.base import BaseAgent

    if not _IMPORT_PATH.match(import_path):
        raise UnknownAgentType(
            f"agent import path {import_path!r} is malformed; expected 'package.module:ClassName'"
        )
    module_name, class_name = import_path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownAgentType(f"cannot import module {module_name!r} for agent {import_path!r}: {exc}") from exc
    except Exception as exc:  # a module that fails while importing
        raise UnknownAgentType(
            f"importing {module_name!r} for agent {import_path!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise UnknownAgentType(f"module {module_name!r} has no class {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, BaseAgent)):
        raise UnknownAgentType(f"{import_path!r} is not a subclass of engine.BaseAgent")
    return cls
