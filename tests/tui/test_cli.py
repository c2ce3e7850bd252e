"""The ``swarm-tui`` command's UI side: Textual stays out of the headless path."""

from __future__ import annotations

import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def test_the_cli_module_does_not_import_textual() -> None:
    """``--run`` must work without loading the UI: importing the CLI leaves textual out."""
    result = _python("import sys, swarm_tui.cli; print('textual' in sys.modules, 'swarm_tui.app' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_the_ui_needs_a_terminal() -> None:
    """Without a terminal the UI refuses politely (exit 2) and points at --run."""
    result = _python("import sys; from swarm_tui.cli import main; sys.exit(main([]))")
    assert result.returncode == 2
    assert "--run" in result.stderr
    assert "Traceback" not in result.stderr
