"""``AgentTable``: one row per agent, sortable, filterable, with multi-select.

Rows are keyed by agent id, so the cursor and the selection follow an agent when
the order changes.  A refresh that keeps the order only rewrites the cells that
changed; a new order (sorting by a live column, an agent added or gone) rebuilds
the rows and puts the cursor back on the same agent.

Textual's ``DataTable`` forgets every rendered cell whenever any cell changes, so a
refresh that changed a few numbers re-rendered the whole visible table (most of the
UI's CPU per snapshot).  :meth:`AgentTable._render_cell` keeps each rendered cell
for as long as the cell's value is the same object (``_refresh_rows`` leaves an
unchanged cell's value in place) and everything else it depends on is equal.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

from engine import AgentInfo
from swarm_tui.history import Frame
from swarm_tui.render import (
    AGENT_COLUMNS,
    DESCENDING_BY_DEFAULT,
    SORT_KEYS,
    agent_row,
    order_agents,
)

#: Columns a user can sort by, in the order the sort key cycles through them.
SORTABLE = tuple(c.key for c in AGENT_COLUMNS if c.key in SORT_KEYS)


class AgentTable(DataTable):
    """The agents of the current frame (see module docstring)."""

    BINDINGS = [
        Binding("space", "toggle_select", "Select", show=False),
        Binding("ctrl+a", "select_all", "Select all", show=False),
    ]

    frame: reactive[Frame | None] = reactive(None)
    """The frame to show (bound to the screen's)."""
    sort_key: reactive[str | None] = reactive(None)
    """Column the rows are sorted by (``None`` = start order)."""
    sort_reverse: reactive[bool] = reactive(False)
    """Sort largest/last first."""
    query: reactive[str] = reactive("")
    """Filter text (see :func:`swarm_tui.render.agent_matches`)."""

    def __init__(self, *, id: str | None = None) -> None:
        self._cell_lines: LRUCache[tuple, tuple[object, list[list[Segment]]]] = LRUCache(4096)
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.selected: set[str] = set()
        self._row_ids: list[str] = []
        self._cells: dict[str, tuple] = {}

    def on_mount(self) -> None:
        """Create the columns."""
        self._add_columns()

    def _add_columns(self) -> None:
        for column in AGENT_COLUMNS:
            label = column.label
            if column.key == self.sort_key:
                label = f"{label}{'▼' if self.sort_reverse else '▲'}"
            self.add_column(Text(label, style="bold"), key=column.key, width=column.width)
        self.fixed_columns = 2

    # --- what the rest of the UI asks ------------------------------------------------------

    @property
    def agents(self) -> list[AgentInfo]:
        """The agents shown, in row order."""
        if self.frame is None:
            return []
        by_id = {a.id: a for a in self.frame.snapshot.agents}
        return [by_id[i] for i in self._row_ids if i in by_id]

    @property
    def cursor_agent_id(self) -> str | None:
        """Id of the agent under the cursor, if any."""
        if not self._row_ids or not 0 <= self.cursor_row < len(self._row_ids):
            return None
        return self._row_ids[self.cursor_row]

    def target_ids(self) -> list[str]:
        """What an action applies to: the selected agents (in row order), else the cursor's."""
        if self.selected:
            return [i for i in self._row_ids if i in self.selected] + sorted(self.selected - set(self._row_ids))
        cursor = self.cursor_agent_id
        return [cursor] if cursor else []

    def move_to(self, agent_id: str) -> None:
        """Put the cursor on an agent's row."""
        if agent_id in self._row_ids:
            self.move_cursor(row=self._row_ids.index(agent_id), animate=False)

    # --- actions ---------------------------------------------------------------------------

    def action_toggle_select(self) -> None:
        """Select or unselect the agent under the cursor, then move down."""
        agent_id = self.cursor_agent_id
        if agent_id is None:
            return
        self.selected.symmetric_difference_update({agent_id})
        self._refresh_rows()
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1, animate=False)

    def action_select_all(self) -> None:
        """Select every agent shown (or clear the selection if all are selected)."""
        shown = set(self._row_ids)
        self.selected = set() if shown and shown <= self.selected else shown
        self._refresh_rows()

    def clear_selection(self) -> None:
        """Unselect every agent."""
        if self.selected:
            self.selected.clear()
            self._refresh_rows()

    def cycle_sort(self) -> None:
        """Sort by the next column (start order after the last)."""
        keys = [None, *SORTABLE]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_by(nxt)

    def sort_by(self, key: str | None, *, toggle: bool = False) -> None:
        """Sort by ``key``; ``toggle`` flips the direction when it is already the sort column."""
        if toggle and key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_reverse = key in DESCENDING_BY_DEFAULT
            self.sort_key = key
        self._rebuild()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column header sorts by it (again: reverses)."""
        event.stop()
        key = event.column_key.value
        if key in SORT_KEYS:
            self.sort_by(key, toggle=True)

    # --- drawing ---------------------------------------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """A cell's lines, re-rendered only when its value (or how it is drawn) changed."""
        if column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        try:
            column_key = self._column_locations.get_key(column_index)
            if row_index == -1:
                value: object = self.columns[column_key].label
                height = self.header_height
            else:
                row_key = self._row_locations.get_key(row_index)
                value = self._data[row_key][column_key]
                height = self.rows[row_key].height
        except (KeyError, IndexError):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        # Settings that change how every cell looks (show_cursor, fixed rows/columns, padding,
        # zebra stripes, theme) clear the caches (``_clear_caches``/``notify_style_update``).
        key = (row_index, column_key, height, base_style, width, cursor, hover, self._show_hover_cursor,
               self._pseudo_class_state)
        cached = self._cell_lines.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_lines.discard(key)  # LRUCache.set keeps an existing entry
        self._cell_lines[key] = (value, lines)
        return lines

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cell_lines.clear()

    def notify_style_update(self) -> None:
        self._cell_lines.clear()
        super().notify_style_update()

    def watch_frame(self) -> None:
        self._refresh_rows()

    def watch_query(self) -> None:
        self._refresh_rows()

    def _rebuild(self) -> None:
        """Recreate columns (for the sort mark) and rows."""
        if not self.is_mounted:
            return
        cursor = self.cursor_agent_id
        self.clear(columns=True)
        self._row_ids = []
        self._cells.clear()
        self._add_columns()
        self._refresh_rows()
        if cursor:
            self.move_to(cursor)

    def _refresh_rows(self) -> None:
        if self.frame is None or not self.columns:
            return
        snapshot = self.frame.snapshot
        self.selected &= {a.id for a in snapshot.agents}
        agents = order_agents(snapshot.agents, sort_key=self.sort_key, reverse=self.sort_reverse, query=self.query)
        ids = [a.id for a in agents]
        rows = {a.id: agent_row(a, selected=a.id in self.selected, trend=self.frame.trends.get(a.id, ()))
                for a in agents}
        if ids != self._row_ids:
            cursor = self.cursor_agent_id
            self.clear()
            for agent_id in ids:
                self.add_row(*rows[agent_id], key=agent_id)
            self._row_ids = ids
            self._cells = rows
            if cursor in ids:
                self.move_to(cursor)
            return
        keys = [c.key for c in AGENT_COLUMNS]
        for agent_id, cells in rows.items():
            old = self._cells.get(agent_id, ())
            for i, (key, cell) in enumerate(zip(keys, cells, strict=True)):
                if i >= len(old) or old[i] != cell:
                    try:
                        self.update_cell(agent_id, key, cell)
                    except (CellDoesNotExist, RowDoesNotExist):
                        pass
        self._cells = rows
