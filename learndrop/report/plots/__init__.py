"""Plotly figures of runs, as pure functions of the DataFrames in ``tables`` (no Streamlit here).

Every builder returns a figure that reads on its own: with no data yet it says what will appear,
long runs are decimated (at most ``MAX_COLUMNS`` checks, ``MAX_POINTS`` points per line), and
FLOPs are conv/matmul FLOPs counted as 2·MAC. Inputs are never modified (they are shared).
"""

from ._style import (
    CHUNK,
    FLOPS_AXIS,
    HEIGHT,
    MAX_CHUNK_LABELS,
    MAX_COLUMNS,
    MAX_POINTS,
    STATE_COLORS,
    STATES,
    chunk_starts,
    decimate,
    empty_figure,
    mark_chunks,
    si,
)
from .comparison import compare_lines, flops_bars, frontier_chart
from .inside import feature_maps, filter_grid, mosaic
from .run import (
    active_network,
    change_heatmap,
    chunk_accuracy,
    epoch_times,
    flops_chart,
    loss_accuracy,
    score_lines,
)
from .teaching import flops_by_unit, unit_story

__all__ = ["CHUNK", "FLOPS_AXIS", "HEIGHT", "MAX_CHUNK_LABELS", "MAX_COLUMNS", "MAX_POINTS", "STATES",
           "STATE_COLORS", "active_network", "change_heatmap", "chunk_accuracy", "chunk_starts",
           "compare_lines", "decimate", "empty_figure", "epoch_times", "feature_maps", "filter_grid",
           "flops_bars", "flops_by_unit", "flops_chart", "frontier_chart", "loss_accuracy", "mark_chunks",
           "mosaic", "score_lines", "si", "unit_story"]
