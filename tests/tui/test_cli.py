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


def test_the_ui_audits_the_configuration_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The TUI path writes config_load to the audit log like the headless one: refused, then accepted."""
    import json

    bad, good, audit = tmp_path / "bad.toml", tmp_path / "good.toml", tmp_path / "audit.log"
    bad.write_text("max_agents = 0\n")
    good.write_text('name = "audited"\n')
    refused = _python(f"import sys; from swarm_tui.cli import main; "
                      f"sys.exit(main(['--config', {str(bad)!r}, '--audit-log', {str(audit)!r}]))")
    assert refused.returncode == 2 and "configuration error" in refused.stderr and "max_agents" in refused.stderr
    accepted = _python(f"import sys; from swarm_tui.cli import main; "
                       f"sys.exit(main(['--config', {str(good)!r}, '--audit-log', {str(audit)!r}]))")
    assert accepted.returncode == 2 and "needs a terminal" in accepted.stderr  # loaded, then no terminal here
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["action"], e["outcome"], e["target"]) for e in entries] == [
        ("config_load", "error", str(bad)), ("config_load", "ok", str(good))]
    assert entries[1]["details"]["name"] == "audited"
    from engine.audit import verify

    assert verify(audit).ok
