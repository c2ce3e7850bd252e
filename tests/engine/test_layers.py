"""The layering rules as a check: engine never imports the UI; the UI uses engine's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (absolute names), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def python_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    return files


@pytest.mark.parametrize("path", python_files("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_never_imports_the_ui(path: Path) -> None:
    """No module of ``engine`` imports textual, rich or swarm_tui."""
    bad = [(line, name) for line, name in imported_modules(path)
           if name.split(".")[0] in ("textual", "rich", "swarm_tui")]
    assert not bad, f"{path.relative_to(ROOT)} imports the UI layer: {bad}"


@pytest.mark.parametrize("path", python_files("swarm_tui"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_uses_only_the_public_engine_api(path: Path) -> None:
    """``swarm_tui`` never reaches into private ``engine._*`` modules."""
    bad = [(line, name) for line, name in imported_modules(path)
           if name.startswith("engine.") and any(part.startswith("_") for part in name.split(".")[1:])]
    assert not bad, f"{path.relative_to(ROOT)} imports engine internals: {bad}"
