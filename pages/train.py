"""Train: start a run, steer its thresholds while it trains, and watch Learn&Drop work, live."""

import streamlit as st

from dashboard import state, train_ui

st.title("Train")
st.caption("Learn&Drop scores every block of the network at each check and stops training the front blocks "
           "once they have stopped learning. Start the Quick demo and watch it happen.")

run_id = state.selected()
registry = state.registry()
train_ui.init_fields(run_id)
train_ui.settings(run_id)
train_ui.controls(run_id)

# Drain new events only while the run (or its baseline) trains; a finished run is drawn once.
live = run_id is not None and registry.active_of(run_id) is not None


@st.fragment(run_every=state.REFRESH_S if live else None)
def live_panel() -> None:
    if run_id is None:
        st.info("No run selected: choose a preset above and press **Start**, or pick a recorded run in the sidebar.")
        return
    train_ui.panel(run_id)
    if live and registry.active_of(run_id) is None:
        st.rerun()  # it just finished: redraw the whole page once, without the timer


live_panel()
