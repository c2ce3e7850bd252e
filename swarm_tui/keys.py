"""The key map, written once: the help screen and docs/UI.md show this table.

The bindings themselves live on the app and screens; ``tests/tui`` checks that every
binding shown in a footer has a line here.
"""

from __future__ import annotations

#: (section, [(keys, what they do)]).
KEY_HELP: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Agents (the selected ones, else the one under the cursor)", (
        ("s", "spawn agents: a dialog asks the type and how many"),
        ("k", "kill: asks for confirmation, then stops them for good"),
        ("p", "pause, or resume if they are all paused"),
        ("r", "restart gracefully"),
        ("+ / -", "priority up / down (nice value -1 / +1; up needs privileges)"),
        ("c", "pin to CPU cores: a dialog asks which (empty = all)"),
        ("enter", "open the agent's detail screen"),
    )),
    ("Agent table", (
        ("up / down", "move the cursor one row"),
        ("pageup / pagedown", "move the cursor a screenful"),
        ("home / end", "cursor to the first / last row"),
        ("left / right", "scroll the columns sideways (agent ids stay in place)"),
        ("click", "cursor to the row; again on the cursor's row: detail; ctrl+click or the ● column: select"),
        ("space", "select / unselect the agent under the cursor (multi-select)"),
        ("ctrl+a", "select all shown agents (again: none)"),
        ("o / O", "sort by the next column / reverse the order (or click a header)"),
        ("/", "filter agents: words match id, type or state; type:echo state:paused"),
        ("escape", "clear the filter, then the selection"),
    )),
    ("Event log", (
        ("f", "filter events by text"),
        ("v", "cycle the least severity shown: all, warning, error"),
    )),
    ("Replay (swarm-tui --replay FILE; the keys that change a swarm are off)", (
        ("p", "play / pause"),
        ("] / [", "faster / slower (0.25x to 16x)"),
        ("n / N", "jump to the next / previous alert"),
        (". / ,", "step one snapshot forward / back (pauses)"),
    )),
    ("Anywhere", (
        ("ctrl+p", "command palette: every action, spawn <type>, open <agent>"),
        ("?", "this help"),
        ("escape", "close a dialog or the detail screen"),
        ("q / ctrl+c", "quit: stops every agent and frees the shared memory"),
    )),
)
