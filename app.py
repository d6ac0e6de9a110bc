"""Learn&Drop dashboard: `streamlit run app.py`. Pages live in pages/; state and figures in the library."""

import streamlit as st

from dashboard import state
from learndrop.errors import LearnDropError
from learndrop.runs.store import RUNS_DIR_ENV

st.set_page_config(page_title="Learn&Drop", page_icon="✂️", layout="wide")

navigation = st.navigation([
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", default=True),
    st.Page("pages/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
    st.Page("pages/explorer.py", title="Threshold explorer", icon=":material/tune:"),
    st.Page("pages/look_inside.py", title="Look inside", icon=":material/visibility:"),
    st.Page("pages/how_it_works.py", title="How it works", icon=":material/school:"),
])

st.sidebar.markdown("**Learn&Drop** trains CNNs faster by dropping the layers that have stopped learning.")
if problem := state.runs_dir_problem():  # the pages go on, showing what they can read; nothing can start
    st.error(f"{problem}. No run can be started or recorded until that is fixed (or {RUNS_DIR_ENV} names "
             "another folder; the server reads it when it starts).", icon=":material/folder_off:")
run_id = state.url_run()  # validated ?run=, kept across pages; a bad id stops here with an error
state.run_picker(run_id)
training, queued = state.registry().training_and_queued()  # one trains at a time; the others wait apart
if training:
    st.sidebar.caption("Training now: " + ", ".join(f"{r} (paused)" if state.registry().is_paused(r) else r
                                                    for r in training))
if queued:
    st.sidebar.caption(f"Queued: {', '.join(queued)}")
try:
    navigation.run()
except LearnDropError as exc:  # a user-facing error is one line, never a traceback
    st.error(str(exc))
