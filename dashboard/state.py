"""What every page shares: the one run registry (queue and catalogue), the selected run (``?run=``), the run
picker."""

from __future__ import annotations

import streamlit as st

from learndrop.errors import LearnDropError
from learndrop.runs.registry import RunRegistry
from learndrop.runs.store import RunStore, default_runs_dir, validate_run_id

REFRESH_S = 1.0  # how often a page showing a live run drains its new events
PICKER_RUNS = 200  # newest runs offered in the sidebar
RUNS_DIR_CHECK_S = 30  # how long the answer "can runs be written in the runs folder" is kept


@st.cache_resource(show_spinner=False)
def _registry(runs_dir: str) -> RunRegistry:
    return RunRegistry(RunStore(runs_dir))


def registry() -> RunRegistry:
    """The process's one registry (per runs folder): its queue owns the training threads and live thresholds,
    its catalogue the views every session shares; ``st.cache_resource`` keeps it across sessions and
    reruns."""
    return _registry(str(default_runs_dir().resolve()))


@st.cache_data(ttl=RUNS_DIR_CHECK_S, show_spinner=False)
def _runs_dir_problem(runs_dir: str) -> str | None:
    try:
        RunStore(runs_dir).check_writable()
    except LearnDropError as exc:
        return str(exc)
    return None


def runs_dir_problem() -> str | None:
    """Why no run can be recorded in the runs folder (one line naming it), or None; asked again after a while,
    so a folder fixed meanwhile is noticed. The pages still show what they can read."""
    return _runs_dir_problem(str(default_runs_dir().resolve()))


def url_run() -> str | None:
    """The run named by ``?run=`` (kept across pages in the session). A malformed id shows an error and
    stops the page; an unknown one shows an error and the page goes on without a run."""
    run_id = st.query_params.get("run") or st.session_state.get("run")
    if not run_id:
        return None
    try:
        validate_run_id(run_id)
    except LearnDropError as exc:
        st.session_state.pop("run", None)
        st.error(str(exc))
        st.stop()
    if registry().status(run_id) is None:
        st.session_state.pop("run", None)
        st.error(f"There is no run {run_id!r} in {str(registry().store.root)!r}.")
        return None
    select(run_id)
    return run_id


def select(run_id: str | None) -> None:
    """Make ``run_id`` the page's run: in the URL (a reload or a shared link re-attaches) and the session."""
    if run_id:
        st.session_state["run"] = run_id
        if st.query_params.get("run") != run_id:
            st.query_params["run"] = run_id
    else:
        st.session_state.pop("run", None)
        st.query_params.pop("run", None)


def selected() -> str | None:
    """The run app.py validated for this script run."""
    return st.session_state.get("run")


def require_app() -> None:
    """Make sure the page runs through app.py (st.navigation), not on its own.

    Streamlit keeps a legacy mode for apps with a ``pages/`` folder: until some session has called
    ``st.navigation``, a page URL opened first on a fresh server runs the page file alone, without
    app.py (no registry check of ``?run=``, no sidebar, narrow layout). Leave that mode and run again.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def run_label(run_id: str) -> str:
    return f"{run_id} · {registry().status(run_id)}"


def run_picker(current: str | None) -> None:
    """The sidebar's run selector; choosing a run puts it in the URL."""
    ids = registry().run_ids()[:PICKER_RUNS]
    if current and current not in ids:
        ids.insert(0, current)
    options = [None, *ids]
    choice = st.sidebar.selectbox("Run", options, index=options.index(current),
                                  help="Runs of this runs folder, newest first. The chosen run is in the "
                                  "page's address, so a link to it re-opens it.",
                                  format_func=lambda r: "— none —" if r is None else run_label(r))
    if choice != current:
        select(choice)
        st.rerun()


def comparable_baseline(run_id: str) -> str | None:
    """The run's linked baseline, else the newest stored run that fits as one."""
    return registry().find_baseline(run_id)
