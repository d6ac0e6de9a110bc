"""Look inside: the first unit's filters and every shown unit's strongest feature maps, as image mosaics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..inside import UnitView
from ._style import STATE_COLORS, STATES, _layout, empty_figure

GAP = 255  # the white between tiles
TILE = 16  # px a side each map is drawn at (smaller ones are enlarged, pixel by pixel)


def _rgb(tile: np.ndarray) -> np.ndarray:
    """(c, h, w) uint8 -> (h, w, 3): RGB as is, one channel as grey, other counts as their mean in grey."""
    if tile.shape[0] == 3:
        return tile.transpose(1, 2, 0)
    grey = tile.mean(axis=0).round().astype(np.uint8) if tile.shape[0] != 1 else tile[0]
    return np.repeat(grey[:, :, None], 3, axis=2)


def _enlarge(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour enlargement of an (h, w, 3) image to about ``size`` px a side (never smaller)."""
    k = max(1, size // max(img.shape[:2]))
    return img.repeat(k, axis=0).repeat(k, axis=1)


def mosaic(tiles: Sequence[np.ndarray], columns: int, size: int, gap: int = 1) -> np.ndarray:
    """(h, w, 3) tiles, enlarged to ``size``, in rows of ``columns`` with ``gap`` px of white between them."""
    big = [_enlarge(t, size) for t in tiles]
    h, w = max(t.shape[0] for t in big), max(t.shape[1] for t in big)
    rows = -(-len(big) // columns)
    out = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), GAP, dtype=np.uint8)
    for i, t in enumerate(big):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + t.shape[0], c * (w + gap):c * (w + gap) + t.shape[1]] = t
    return out


def filter_grid(filters: np.ndarray | None, unit: str, since: int | None = None) -> go.Figure:
    """The first unit's filters (n, c, h, w), each on its own scale: RGB where the input has 3 channels."""
    if filters is None:
        return empty_figure("No filters recorded yet: they appear at the first check.", height=260)
    img = mosaic([_rgb(f) for f in filters], columns=min(16, len(filters)), size=TILE, gap=2)
    fig = go.Figure(go.Image(z=img, hoverinfo="skip"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    note = f" (dropped: unchanged since check {since})" if since is not None else ""
    fig.update_layout(title=dict(text=f"{unit}: its {len(filters)} filters{note}", font=dict(size=13)))
    return _layout(fig, height=max(160, 40 + img.shape[0] * 4), legend=False)


def feature_maps(views: Sequence[UnitView], image: int) -> go.Figure:
    """One row per unit: its strongest maps for test image ``image``, a strip in the colour of its state on
    the left (training, candidate, frozen, dropped) and, for a dropped unit, the check its maps are from."""
    rows = [v for v in views if v.maps is not None]
    if not rows:
        return empty_figure("No feature maps recorded yet: they appear at the first check.")
    columns = max(v.maps.shape[1] for v in rows)
    strip, pitch = 6, TILE + 3
    img = np.full((len(rows) * pitch, strip + 4 + columns * (TILE + 1), 3), GAP, dtype=np.uint8)
    for r, v in enumerate(rows):
        color = STATE_COLORS[STATES.index(v.state)] if v.state in STATES else "#999999"
        img[r * pitch:r * pitch + TILE, :strip] = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
        maps = mosaic([_rgb(m[None]) for m in v.maps[image]], columns=columns, size=TILE)
        img[r * pitch:r * pitch + maps.shape[0], strip + 4:strip + 4 + maps.shape[1]] = maps
    fig = go.Figure(go.Image(z=img, hoverinfo="skip"))
    labels = [f"{v.unit} · {v.state}" + (f" (since check {v.since})" if v.unchanged else "") for v in rows]
    fig.update_yaxes(tickvals=[r * pitch + TILE / 2 for r in range(len(rows))], ticktext=labels,
                     showgrid=False)
    fig.update_xaxes(visible=False)
    return _layout(fig, height=max(220, 40 + len(rows) * 40), legend=False)
