"""Train: start a run, steer its thresholds while it trains, and watch Learn&Drop work, live."""

import streamlit as st

from dashboard import settings_ui, state, train_ui
from learndrop.errors import LearnDropError

state.require_app()
st.title("Train")
st.caption("Learn&Drop scores every unit of the network at each check and stops training the front units "
           "once they have stopped learning. Start the Quick demo and watch it happen.")

run_id = state.selected()
registry = state.registry()
settings_ui.init_fields(run_id)
settings_ui.settings(run_id)
train_ui.controls(run_id)

# Drain new events only while the run (or its baseline) trains; a finished run is drawn once.
active = registry.active_of(run_id) if run_id else None
live = active is not None
paused = live and registry.is_paused(active)
refresh = state.REFRESH_S * (5 if paused else 1)  # a paused run is polled less often


@st.fragment(run_every=refresh if live else None)
def live_panel() -> None:
    if run_id is None:
        st.info("No run selected: choose a preset above and press **Start**, or pick a recorded run in the "
                "sidebar.")
        return
    train_ui.sync_thresholds(run_id)  # a slider move whose callback was skipped reaches the run here
    try:
        train_ui.panel(run_id)
    except LearnDropError as exc:  # one line, never a traceback (the fragment reruns outside app.py)
        st.error(str(exc))
    now = registry.active_of(run_id)
    if live and (now is None or registry.is_paused(now) != paused):
        st.rerun()  # it finished (redraw once, without the timer), or another session paused or resumed it


live_panel()
