"""Look inside: what each unit has learned, check by check, and the front units settling and dropping."""

import streamlit as st

from dashboard import inside_ui, state
from learndrop.errors import LearnDropError
from learndrop.report.compare import run_label
from learndrop.status import LIVE, RECORDED

state.require_app()
st.title("Look inside")
st.caption("What the network computes, as it trains: the first unit's filters and each unit's strongest "
           "feature maps for a few test images, at every check. Watch the front units settle first, turn "
           "grey as they drop, and stop changing from then on.")

registry = state.registry()
runs = [r for r in registry.run_ids() if registry.status(r) in RECORDED]
if not runs:
    st.info("No run yet: train one on the Train page (the Quick demo takes well under a minute).")
    st.stop()
current = state.selected()
run_id = st.selectbox("Run", runs, index=runs.index(current) if current in runs else 0,
                      format_func=lambda r: run_label(registry.summary(r)))
if run_id != current:  # the URL (and the sidebar) name the run shown
    state.select(run_id)
    st.rerun()
live = registry.status(run_id) in LIVE
playing = st.toggle("Play", key=f"inside_play_{run_id}", help="Step through the checks on their own, round "
                    "again at the end.")
every = inside_ui.PLAY_S if playing else state.REFRESH_S if live else None


@st.fragment(run_every=every)
def body() -> None:
    try:
        inside = inside_ui.load(registry.store.path(run_id))
    except LearnDropError as exc:  # a damaged record: one line (the fragment reruns outside app.py's catch)
        st.error(str(exc))
        return
    if inside is None:
        st.info("This run has no look-inside record: runs recorded before this view existed do not have one. "
                "Train a new run (the Quick demo) to see inside it.")
        return
    if not inside.checks:
        st.info("No check yet: the first maps appear at the run's first check.")
        return
    inside_ui.viewer(inside, run_id, playing, registry.summary(run_id).get("train_time_s"))


body()
