"""``AgentTable``: one row per agent, sortable, filterable, with multi-select.

A line-API widget (a ``ScrollView`` that draws each visible line itself), not a
``DataTable``: a live swarm changes a few numbers in most rows every second, and
``DataTable`` forgets every rendered cell whenever any cell changes, so each snapshot
re-rendered the whole visible table through Rich (most of the UI's CPU).  Here a row
is a tuple of :data:`~swarm_tui.render.Cell` values; its drawn line (a ``Strip``) is
cached by that tuple and how the row is drawn (cursor, zebra stripe, focus), and a
new snapshot repaints only the lines whose row tuple changed.

Rows are keyed by agent id, so the cursor and the selection follow an agent when the
order changes.  The first two columns (selection mark and id) stay in place when the
table scrolls sideways; the header line stays in place when it scrolls down.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine import AgentInfo
from swarm_tui.history import Frame
from swarm_tui.render import (
    AGENT_COLUMNS,
    DESCENDING_BY_DEFAULT,
    SORT_KEYS,
    Cell,
    Column,
    agent_row,
    order_agents,
)

#: Columns a user can sort by, in the order the sort key cycles through them.
SORTABLE = tuple(c.key for c in AGENT_COLUMNS if c.key in SORT_KEYS)

#: Blank cells each side of a column's content.
CELL_PADDING = 1

#: Columns that stay put when the table scrolls sideways (selection mark, id).
FIXED_COLUMNS = 2


def _span(column: Column) -> int:
    return column.width + 2 * CELL_PADDING


#: Where each column starts, in cells from the table's left edge.
COLUMN_STARTS = tuple(sum(_span(c) for c in AGENT_COLUMNS[:i]) for i in range(len(AGENT_COLUMNS)))
#: The width of every column together.
TABLE_WIDTH = sum(_span(c) for c in AGENT_COLUMNS)
#: The width of the columns that do not scroll sideways.
FIXED_WIDTH = sum(_span(c) for c in AGENT_COLUMNS[:FIXED_COLUMNS])


def fit_cell(cell: Cell, width: int) -> list[tuple[str, str]]:
    """The runs of ``cell`` cut to ``width`` cells (the last kept cell becomes ``…``)."""
    if sum(cell_len(text) for text, _ in cell) <= width:
        return list(cell)
    runs: list[tuple[str, str]] = []
    room = width - 1
    for text, style in cell:
        if room <= 0:
            break
        n = cell_len(text)
        if n > room:
            text = set_cell_size(text, room)
            n = room
        runs.append((text, style))
        room -= n
    runs.append(("…", runs[-1][1] if runs else cell[0][1] if cell else ""))
    return runs


class AgentTable(ScrollView, can_focus=True):
    """The agents of the current frame (see module docstring)."""

    BINDINGS = [
        Binding("enter", "choose", "Detail", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up_rows", "Page up", show=False),
        Binding("pagedown", "page_down_rows", "Page down", show=False),
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("space", "toggle_select", "Select", show=False),
        Binding("ctrl+a", "select_all", "Select all", show=False),
    ]

    COMPONENT_CLASSES = {
        "agent-table--header",
        "agent-table--cursor",
        "agent-table--even-row",
        "agent-table--fixed",
        "agent-table--fixed-cursor",
    }

    DEFAULT_CSS = """
    AgentTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .agent-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .agent-table--fixed-cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
            }
        }
        & > .agent-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .agent-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .agent-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .agent-table--even-row {
            background: $surface-lighten-1 50%;
        }
        &:dark > .agent-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .agent-table--fixed {
            background: $secondary-muted;
            color: $foreground;
        }
        & > .agent-table--fixed-cursor {
            background: $block-cursor-blurred-background;
            color: $foreground;
        }
    }
    """

    class AgentChosen(Message):
        """Enter, or a click on the row under the cursor: open this agent."""

        def __init__(self, table: AgentTable, agent_id: str) -> None:
            super().__init__()
            self.table = table
            self.agent_id = agent_id

        @property
        def control(self) -> AgentTable:
            """The table the agent was chosen in."""
            return self.table

    frame: reactive[Frame | None] = reactive(None, repaint=False)
    """The frame to show (bound to the screen's)."""
    sort_key: reactive[str | None] = reactive(None, repaint=False)
    """Column the rows are sorted by (``None`` = start order)."""
    sort_reverse: reactive[bool] = reactive(False, repaint=False)
    """Sort largest/last first."""
    query: reactive[str] = reactive("", repaint=False)
    """Filter text (see :func:`swarm_tui.render.agent_matches`)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected: set[str] = set()
        self.cursor_row = 0
        self._row_ids: list[str] = []
        self._rows: dict[str, tuple[Cell, ...]] = {}
        self._strips: LRUCache[tuple[object, ...], Strip] = LRUCache(1024)
        self._styles: dict[str, Style] = {}
        self._header: Strip | None = None

    # --- what the rest of the UI asks ------------------------------------------------------

    @property
    def agents(self) -> list[AgentInfo]:
        """The agents shown, in row order."""
        if self.frame is None:
            return []
        by_id = {a.id: a for a in self.frame.snapshot.agents}
        return [by_id[i] for i in self._row_ids if i in by_id]

    @property
    def row_count(self) -> int:
        """How many agents are shown."""
        return len(self._row_ids)

    @property
    def cursor_agent_id(self) -> str | None:
        """Id of the agent under the cursor, if any."""
        if not 0 <= self.cursor_row < len(self._row_ids):
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
            self.move_cursor(self._row_ids.index(agent_id))

    def move_cursor(self, row: int) -> None:
        """Put the cursor on row ``row`` (clamped to the rows there are) and keep it in view."""
        row = max(0, min(row, len(self._row_ids) - 1))
        if row != self.cursor_row:
            old, self.cursor_row = self.cursor_row, row
            self._refresh_rows_shown([old, row])
        self._scroll_to_cursor()

    # --- actions ---------------------------------------------------------------------------

    def action_choose(self) -> None:
        """Open the agent under the cursor."""
        agent_id = self.cursor_agent_id
        if agent_id is not None:
            self.post_message(self.AgentChosen(self, agent_id))

    def action_cursor_up(self) -> None:
        """Cursor one row up."""
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        """Cursor one row down."""
        self.move_cursor(self.cursor_row + 1)

    def action_page_up_rows(self) -> None:
        """Cursor one screenful up."""
        self.move_cursor(self.cursor_row - self._visible_rows())

    def action_page_down_rows(self) -> None:
        """Cursor one screenful down."""
        self.move_cursor(self.cursor_row + self._visible_rows())

    def action_first_row(self) -> None:
        """Cursor to the first row."""
        self.move_cursor(0)

    def action_last_row(self) -> None:
        """Cursor to the last row."""
        self.move_cursor(len(self._row_ids) - 1)

    def action_scroll_right(self) -> None:
        """Scroll sideways to the next column (at the end: as far as the last column needs)."""
        x = self.scroll_offset.x + FIXED_WIDTH
        starts = [start for start in COLUMN_STARTS[FIXED_COLUMNS:] if start > x]
        target = starts[0] - FIXED_WIDTH if starts else self.max_scroll_x
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False)

    def action_scroll_left(self) -> None:
        """Scroll sideways back to the previous column."""
        x = self.scroll_offset.x + FIXED_WIDTH
        starts = [start for start in COLUMN_STARTS[FIXED_COLUMNS:] if start < x]
        self.scroll_to(x=(starts[-1] if starts else FIXED_WIDTH) - FIXED_WIDTH, animate=False)

    def action_toggle_select(self) -> None:
        """Select or unselect the agent under the cursor, then move down."""
        agent_id = self.cursor_agent_id
        if agent_id is None:
            return
        self.selected.symmetric_difference_update({agent_id})
        self._refresh_rows()
        self.move_cursor(self.cursor_row + 1)

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
        self._header = None
        self._refresh_rows()
        self.refresh()

    # --- mouse -----------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        """Header: sort by the column.  Row: cursor there; on the cursor's row, open the agent.

        A click in the selection column, or with ctrl held, selects or unselects the agent.
        """
        offset = event.get_content_offset(self)
        if offset is None:
            return
        event.stop()
        scroll_x, scroll_y = self.scroll_offset
        x = offset.x if offset.x < FIXED_WIDTH else offset.x + scroll_x
        column = self.column_at(x)
        if offset.y == 0:
            if column is not None and column.key in SORT_KEYS:
                self.sort_by(column.key, toggle=True)
            return
        row = scroll_y + offset.y - 1
        if not 0 <= row < len(self._row_ids):
            return
        if event.ctrl or (column is not None and column.key == "sel"):
            self.selected.symmetric_difference_update({self._row_ids[row]})
            self._refresh_rows()
            self.move_cursor(row)
        elif row == self.cursor_row:
            self.action_choose()
        else:
            self.move_cursor(row)

    @staticmethod
    def column_at(x: int) -> Column | None:
        """The column at ``x`` cells from the table's left edge (unscrolled), if any."""
        for column, start in zip(AGENT_COLUMNS, COLUMN_STARTS):
            if start <= x < start + _span(column):
                return column
        return None

    # --- drawing ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """Visible line ``y``: the header on line 0, then the rows from the scroll position."""
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            line = self._header_strip()
        else:
            row = scroll_y + y - 1
            if row >= len(self._row_ids):
                return Strip.blank(width, self.rich_style)
            line = self._row_strip(row)
        if scroll_x:
            line = Strip.join([line.crop(0, FIXED_WIDTH),
                               line.crop(FIXED_WIDTH + scroll_x, scroll_x + max(width, FIXED_WIDTH))])
        return line.crop_extend(0, width, self.rich_style)

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.app.console.get_style(name) if name else Style()
        return style

    def _component(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name)
        return style

    def _header_strip(self) -> Strip:
        if self._header is None:
            base = self.rich_style + self._component("agent-table--header")
            segments: list[Segment] = []
            for column in AGENT_COLUMNS:
                label = column.label
                if column.key == self.sort_key:  # the arrow stays; a long label gives way
                    label = f"{label[: column.width - 1]}{'▼' if self.sort_reverse else '▲'}"
                segments.extend(self._cell_segments(((label, ""),), column, base, base))
            self._header = Strip(segments, TABLE_WIDTH)
        return self._header

    def _row_strip(self, row: int) -> Strip:
        cells = self._rows[self._row_ids[row]]
        cursor = row == self.cursor_row
        zebra = row % 2 == 1
        key = (cells, cursor, zebra, self.has_focus)
        strip = self._strips.get(key)
        if strip is None:
            base = self.rich_style
            if zebra:
                base += self._component("agent-table--even-row")
            fixed = base + self._component("agent-table--fixed")
            if cursor:
                base += self._component("agent-table--cursor")
                fixed += self._component("agent-table--fixed-cursor")
            segments: list[Segment] = []
            for i, (column, cell) in enumerate(zip(AGENT_COLUMNS, cells)):
                pad = fixed if i < FIXED_COLUMNS else base
                text = pad if i < FIXED_COLUMNS else base
                segments.extend(self._cell_segments(cell, column, pad, text))
            strip = Strip(segments, TABLE_WIDTH)
            self._strips[key] = strip
        return strip

    def _cell_segments(self, cell: Cell, column: Column, pad: Style, base: Style) -> list[Segment]:
        runs = fit_cell(cell, column.width)
        room = column.width - sum(cell_len(text) for text, _ in runs)
        left = CELL_PADDING + (room if column.right else 0)
        right = CELL_PADDING + (0 if column.right else room)
        segments = [Segment(" " * left, pad)]
        segments.extend(Segment(text, base + self._style(style) if style else base) for text, style in runs)
        segments.append(Segment(" " * right, pad))
        return segments

    def _visible_rows(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top = self.scroll_offset.y
        visible = self._visible_rows()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def _refresh_rows_shown(self, rows: list[int]) -> None:
        """Repaint the lines of these rows that are on screen (one ``refresh`` call: each costs)."""
        top = self.scroll_offset.y
        width, height = self.scrollable_content_region.size
        regions = [Region(0, y, width, 1) for y in (row - top + 1 for row in rows) if 1 <= y < height]
        if regions:
            self.refresh(*regions)

    def _clear_caches(self) -> None:
        self._strips.clear()
        self._styles.clear()
        self._header = None

    def notify_style_update(self) -> None:
        """Styles (theme, focus) changed: every line is drawn anew."""
        self._clear_caches()
        super().notify_style_update()

    def on_resize(self) -> None:
        """A smaller table keeps the cursor's row in view."""
        self.call_after_refresh(self._scroll_to_cursor)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def watch_frame(self) -> None:
        self._refresh_rows()

    def watch_query(self) -> None:
        self._refresh_rows()

    def _refresh_rows(self) -> None:
        """Rebuild the row tuples from the frame; repaint the lines that changed."""
        if self.frame is None:
            return
        snapshot = self.frame.snapshot
        self.selected &= {a.id for a in snapshot.agents}
        agents = order_agents(snapshot.agents, sort_key=self.sort_key, reverse=self.sort_reverse, query=self.query)
        ids = [a.id for a in agents]
        trends = self.frame.trends
        rows = {a.id: agent_row(a, selected=a.id in self.selected, trend=trends.get(a.id, ())) for a in agents}
        if ids != self._row_ids:
            cursor = self.cursor_agent_id
            self._row_ids = ids
            self._rows = rows
            self.virtual_size = Size(TABLE_WIDTH, len(ids) + 1)
            self.cursor_row = ids.index(cursor) if cursor in ids else min(self.cursor_row, max(len(ids) - 1, 0))
            self._scroll_to_cursor()
            self.call_after_refresh(self._scroll_to_cursor)  # a scroll bar that appears only after layout
            self.refresh()
            return
        old = self._rows
        self._rows = rows
        self._refresh_rows_shown([row for row, agent_id in enumerate(ids) if old.get(agent_id) != rows[agent_id]])
