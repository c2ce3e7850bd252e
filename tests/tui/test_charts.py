"""Pure chart maths: sparklines, column charts and gauge bars."""

from __future__ import annotations

from swarm_tui import charts


def test_spark_is_right_aligned_with_a_zero_baseline() -> None:
    """Newest sample right-most; a short history is padded on the left; zero is the lowest bar."""
    assert charts.spark([0, 4, 8], 5) == "  ▁▄█"
    assert charts.spark([], 3) == "   "
    assert len(charts.spark(range(100), 10)) == 10


def test_spark_uses_a_fixed_top_when_given() -> None:
    """With ``hi`` the scale is absolute (50 of 100 is half height)."""
    assert charts.spark([50], 1, hi=100) == "▄"
    assert charts.spark([500], 1, hi=100) == "█"


def test_spark_ignores_nan_inf_and_negative() -> None:
    """Bad samples draw as zero instead of breaking the chart."""
    assert charts.spark([float("nan"), float("inf"), -3, 2], 4) == "▁▁▁█"


def test_bar_chart_has_height_lines_and_fills_bottom_up() -> None:
    """A column chart of ``height`` lines: full value fills the column, half fills the lower half."""
    lines = charts.bar_chart([8, 4, 0], 3, 2)
    assert lines == ["█  ", "██▁"]
    assert charts.bar_chart([1], 0, 3) == []
    assert all(len(line) == 7 for line in charts.bar_chart([1, 2, 3], 7, 4))


def test_gauge_bar_clamps_and_uses_eighths() -> None:
    """A gauge is exactly ``width`` cells, clamped to 0..1, with eighth-cell resolution."""
    assert charts.gauge_bar(0.5, 4) == "██  "
    assert charts.gauge_bar(2.0, 4) == "████"
    assert charts.gauge_bar(-1, 4) == "    "
    assert charts.gauge_bar(1 / 16, 2) == "▏ "


def test_level_against_thresholds() -> None:
    """ok below warn, warn below crit, crit at or above crit."""
    assert [charts.level(v, 75, 90) for v in (10, 80, 90)] == ["ok", "warn", "crit"]
