"""Look inside, on screen: a check slider that steps through training (or plays it), the test images, the
first unit's filters and every unit's strongest feature maps with its state. Used by the Look inside page
and, at the latest check, by the Train page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import widgets
from learndrop.report import plots
from learndrop.report.inside import FILE, Inside, read

PLAY_S = 0.8  # seconds per check while playing


@st.cache_data(max_entries=16, show_spinner=False)
def _read(run_dir: str, size: int, mtime: float) -> Inside | None:
    return read(Path(run_dir))


def load(run_dir: Path) -> Inside | None:
    """The run's record, read again only when its file has grown (the page refreshes every second)."""
    path = Path(run_dir) / FILE
    stat = path.stat() if path.is_file() else None
    return _read(str(run_dir), stat.st_size, stat.st_mtime) if stat else None


def _check(inside: Inside, key: str, playing: bool) -> int:
    """The check to show: the slider's; while playing, the next one (round again at the end); while the run
    trains and the slider sits on the newest check, the newest one."""
    checks = inside.check_ids
    k = f"inside_check_{key}"
    newest = f"inside_newest_{key}"
    current = st.session_state.get(k)
    if playing:
        st.session_state[k] = (checks[(checks.index(current) + 1) % len(checks)] if current in checks
                               else checks[0])
    elif current not in checks or current == st.session_state.get(newest):
        st.session_state[k] = checks[-1]
    st.session_state[newest] = checks[-1]
    epochs = {c["check"]: c["epoch"] for c in inside.checks}
    return st.select_slider("Check", options=checks, key=k,
                            format_func=lambda c: f"{c} (epoch {epochs[c] + 1})",
                            help="Step through training check by check, or press Play.")


def _image(inside: Inside, key: str) -> int:
    names = [inside.classes[label] if label < len(inside.classes) else str(label) for label in inside.labels]
    tiles = [plots.mosaic([img.transpose(1, 2, 0) if img.shape[0] == 3
                           else np.repeat(img[0][:, :, None], 3, 2)],
                          1, 96) for img in inside.images]
    cols = st.columns(len(tiles))
    for col, tile, name in zip(cols, tiles, names):
        col.image(tile, caption=name)
    return st.radio("Test image", range(len(names)), format_func=lambda i: f"{i + 1}: {names[i]}",
                    horizontal=True, key=f"inside_image_{key}")


def viewer(inside: Inside, key: str, playing: bool = False, train_time_s: float | None = None) -> None:
    """The whole view of one run's record (``train_time_s``: the run's training time so far, for the share
    that recording took)."""
    check = _check(inside, key, playing)
    views = inside.at(check)
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**The test images**")
        st.caption("The same few test images run through the network at every check; choose the one to look "
                   "at.")
        image = _image(inside, key)
        filters, since = inside.filters(check)
        first = views[0] if views else None
        widgets.chart("What the first unit looks for", "Each tile is one filter of the first convolution, on "
                      "its own colour scale: early in training they are noise; as the unit learns, edge, "
                      "colour and blob detectors appear, then stop changing.",
                      plots.filter_grid(filters, inside.units[0],
                                        since if first and first.unchanged else None),
                      f"filters_{key}")
    with right:
        widgets.chart("What each unit computes", "Per unit (input side on top), its strongest feature maps "
                      "for the chosen image (bright: strong response). The strip on the left is the unit's "
                      "state at this check: blue training, orange candidate, grey dropped. A dropped unit's "
                      "maps no longer change: its input and its weights are frozen.",
                      plots.feature_maps(views, image), f"maps_{key}")
    spent = inside.seconds()
    share = f", {100 * spent / train_time_s:.2f} % of the training time" if train_time_s else ""
    full = "; the record reached its size cap, later checks are not in it" if inside.full else ""
    st.caption(f"Recording this took {spent:.2f} s in all{share}{full}.")


def latest(inside: Inside | None, key: str) -> None:
    """The Train page's short section: every unit's maps at the newest check, and the way to the full view."""
    if inside is None or not inside.checks:
        return
    views = inside.at(inside.check_ids[-1])
    widgets.chart(f"Look inside (check {inside.check_ids[-1]})", "The strongest feature maps of each unit "
                  "for one test image, the strip its state: a dropped unit's maps stop changing.",
                  plots.feature_maps(views, 0), f"inside_latest_{key}")
    st.page_link("pages/look_inside.py", label="Step through every check on the Look inside page",
                 icon=":material/visibility:")
