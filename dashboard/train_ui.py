"""The Train page's steering and live view: live thresholds, Start/Stop/Pause, the live panel (settings_ui.py:
the run settings)."""

from __future__ import annotations

import streamlit as st

from learndrop.errors import LearnDropError
from learndrop.report import plots, tables
from learndrop.report.view import duration, progress_status
from learndrop.status import RESUMABLE, TRAINING, RunState

from . import inside_ui, state, widgets
from .form import (
    THRESHOLDS,
)
from .settings_ui import start_run


def sync_thresholds(run_id: str | None) -> None:
    """Send the live run the sliders this session moved since it last sent them.

    Called from the sliders' on_change and again on every script and fragment run: Streamlit can skip
    a widget's callback when its change arrives while a run_every fragment reruns, so the callback alone
    could lose a move. Sliders another session moved on the same run are left alone (nothing moved here).
    """
    ss, reg = st.session_state, state.registry()
    if not run_id or not reg.is_live(run_id):
        return
    moved = {name: ss[f"t_{name}"] for name in THRESHOLDS
             if f"t_{name}" in ss and f"_sent_t_{name}" in ss and ss[f"t_{name}"] != ss[f"_sent_t_{name}"]}
    if not moved:
        return
    try:
        reg.set_thresholds(run_id, **moved)
    except LearnDropError as exc:
        ss["_threshold_error"] = str(exc)
    for name, value in moved.items():  # sent, or refused with its reason: either way not sent again
        ss[f"_sent_t_{name}"] = value


def _thresholds_changed() -> None:
    sync_thresholds(state.selected())


def _steer(action, run_id: str) -> None:
    """A button's action on a live run; a run that ended meanwhile gives one line, not a traceback."""
    try:
        action(run_id)
    except LearnDropError as exc:
        st.session_state["_threshold_error"] = str(exc)


def _resume_run(run_id: str) -> None:
    try:
        state.registry().resume_run(run_id)
    except LearnDropError as exc:  # it changed since the button was drawn (resumed elsewhere, completed)
        st.session_state["_resume_error"] = str(exc)


def controls(run_id: str | None) -> None:
    """Start, Stop, Pause/Unpause, Resume training (a stopped, failed or interrupted run with a checkpoint)
    and the four thresholds, which also steer a running run."""
    reg = state.registry()
    active = reg.active_of(run_id) if run_id else None
    unwritable = state.runs_dir_problem()  # said at the top of the page; the buttons that record stay off
    buttons, sliders = st.columns([1, 4])
    with buttons:
        st.button("Start", type="primary", on_click=start_run, key="start", width="stretch",
                  disabled=bool(unwritable), help=f"Cannot start: {unwritable}." if unwritable else
                  "Queue a run with these settings; it starts when no other run trains.")
        b1, b2 = st.columns(2)
        b1.button("Stop", key="stop", disabled=active is None, on_click=_steer, args=(reg.stop, active),
                  width="stretch")
        paused = active is not None and reg.is_paused(active)
        b2.button("Unpause" if paused else "Pause", key="pause", width="stretch",
                  disabled=active is None or reg.status(active) not in TRAINING,
                  on_click=_steer, args=(reg.unpause if paused else reg.pause, active))
        ended = run_id is not None and active is None and reg.status(run_id) in RESUMABLE
        problem = (reg.resume_problem(run_id) or unwritable) if ended else None
        if run_id is not None and active is None and reg.status(run_id) is RunState.RUNNING:
            problem = reg.resume_problem(run_id)  # trained by another process: say which, and the way out
        if ended and problem is None:
            st.button("Resume training", key="resume_run", on_click=_resume_run, args=(run_id,),
                      width="stretch", icon=":material/replay:", help="Continue this run from its last "
                      "checkpoint (the end of its last finished epoch), under the same id; it waits its turn "
                      "if another run trains.")
    with sliders:
        live = run_id is not None and reg.is_live(run_id)
        c, ss = st.columns(4), st.session_state
        c[0].slider("tau (change score ≤)", 0.01, 1.0, step=0.01, key="t_tau", on_change=_thresholds_changed,
                    help="A unit may drop when its change is at most this share of its peak change.")
        # the upper ends stretch to a run's own larger values
        c[1].slider("kappa (continuation ≤)", 0.05, max(3.0, float(ss["t_kappa"])), step=0.05, key="t_kappa",
                    on_change=_thresholds_changed, help="…and its change is not growing again. The "
                    "continuation score c = d(t)/d(t−w) compares the unit's change now with its change w "
                    "checks ago: below 1 it is slowing down, above 1 speeding up. A unit may drop while c is "
                    "at most kappa.")
        c[2].slider("warm-up (checks)", 0, max(20, int(ss["t_warmup"])), step=1, key="t_warmup",
                    on_change=_thresholds_changed, help="Checks before any unit may drop.")
        c[3].slider("patience (checks)", 1, max(10, int(ss["t_patience"])), step=1, key="t_patience",
                    on_change=_thresholds_changed, help="Consecutive checks a unit must meet the rule before "
                                                        "it drops.")
        sync_thresholds(run_id)  # a move whose callback Streamlit skipped
        st.caption("**Live:** moving a slider changes what this run drops from its next check; the three "
                   "charts drawn by check (change score, its lines, the active network) mark the moment with "
                   "a dashed line."
                   if live else "These thresholds apply to the next run you start.")
        if err := st.session_state.pop("_threshold_error", None):
            st.error(err)
    if err := st.session_state.pop("_resume_error", None) or problem:
        st.error(f"Cannot resume: {err}")


# --- the live panel -----------------------------------------------------------------------------------
def status_line(run_id: str) -> None:
    reg = state.registry()
    status, run = reg.status(run_id), reg.get(run_id)
    if status is RunState.QUEUED:
        behind = reg.queued_behind(run_id)
        st.info("Queued: one training runs at a time; this one starts after "
                f"{', '.join(behind) or 'the current one'}.")
    elif run is not None and run.error:
        st.error(run.error)
    elif status is RunState.DAMAGED:
        st.error("This run's folder is damaged, so it cannot be shown or resumed: "
                 f"{reg.summary(run_id)['error']}. Every other run is unaffected.",
                 icon=":material/broken_image:")
    elif status is RunState.RUNNING and (trainer := reg.trainer(run_id)) is not None:
        st.info(f"Trained by {trainer}, not by this server: its charts follow the events it writes.")
    elif status is RunState.INTERRUPTED:
        st.warning("Interrupted: the process that trained this run ended before it finished (the server may "
                   "have restarted). What it recorded is shown.")
    elif status is RunState.FAILED:
        st.error(reg.summary(run_id).get("error") or "the run failed")


def progress(view, label: str) -> None:
    status = progress_status(view)
    if status is not None:
        st.progress(status.fraction, text=f"{label}: {status.label()}")


def panel(run_id: str) -> None:
    """Progress, KPIs and the seven live charts of one run (and its baseline's progress and times)."""
    reg = state.registry()
    status_line(run_id)
    if reg.status(run_id) is RunState.DAMAGED:
        return
    view = reg.view(run_id)
    base_id = state.comparable_baseline(run_id)
    base = reg.view(base_id) if base_id and reg.status(base_id) not in (None, RunState.NOT_STARTED) else None
    progress(view, f"{view.config.get('policy', {}).get('name', 'run')} · {reg.status(run_id)}")
    if base is not None and reg.is_live(base_id):
        progress(base, f"baseline · {reg.status(base_id)}")
    if base_id and reg.status(base_id) is RunState.QUEUED:
        st.caption(queued_baseline(view))
    widgets.kpis(view, base)
    if base_id and base is not None:
        linked = reg.queue.baseline_of(run_id) == base_id
        st.caption(f"Compared with the baseline run {base_id}: "
                   + ("trained with this run, same seed and data order." if linked else
                      "the newest finished run of policy none with this run's model, data and settings "
                      "(trained with it, or earlier: the link is not kept once the server restarts)."))
    scores, drops, checks, epochs, chunks = (view.table(n)
                                             for n in ("scores", "drops", "checks", "epochs", "chunks"))
    base_epochs = base.table("epochs") if base is not None else None
    label = "Learn&Drop" if view.config.get("policy", {}).get("name") != "none" else "this run (baseline)"
    steps = view.started.steps_per_epoch if view.started else 1
    # figures are built once per change of their data, for every viewer of the run; a streaming run's
    # chunk starts are marked on every chart with a time axis
    fig = {
        "heatmap": view.derived("heatmap", ("scores", "drops", "checks", "chunks"),
                                lambda: plots.change_heatmap(scores, drops, checks, chunks)),
        "lines": view.derived("lines", ("scores", "drops", "checks", "chunks"),
                              lambda: plots.score_lines(scores, checks, drops, chunks)),
        "active": view.derived("active", ("scores", "drops", "checks", "chunks"),
                               lambda: plots.active_network(scores, drops, chunks, checks)),
        "times": view.derived("times", ("epochs", "chunks"),
                              lambda: plots.epoch_times(epochs, base_epochs, label, chunks),
                              extra=(base_id, None if base_epochs is None else len(base_epochs))),
        "flops": view.derived("flops", ("epochs", "chunks"),
                              lambda: plots.flops_chart(epochs, label, chunks)),
        "loss": view.derived("loss", ("epochs", "progress", "chunks"),
                             lambda: plots.loss_accuracy(epochs, view.table("progress"), steps, chunks)),
    }
    left, right = st.columns(2)
    with left:
        widgets.chart("Change score per unit and check", "Each row is a unit (input side on top), each "
                      "column a check; colour is the change score s: how far the unit's weights moved since "
                      "the last check, relative to its own peak. ✕ marks a drop; blank cells are units no "
                      "longer trained.",
                      fig["heatmap"], "heatmap")
        widgets.chart("The active network", "Blue units train; orange ones are candidates that wait behind a "
                      "unit still learning (only the front of the network, the prefix, can drop); grey ones "
                      "are dropped: no gradients, and with the cache no forward pass either. The last unit "
                      "before the head always trains, so it never turns orange.", fig["active"], "active")
        widgets.chart("Training time per epoch", "Wall-clock seconds of training per epoch (evaluation "
                      "excluded). Epochs get faster as the front of the network drops; the baseline trains "
                      "everything. On a busy machine these times swing from epoch to epoch: the FLOPs chart "
                      "is the steady measure.",
                      fig["times"], "epoch_times")
    with right:
        widgets.chart("Change score over time", "One line per unit (dark: input side). A unit is a drop "
                      "candidate while its line is under the dashed tau line and it is slowing down "
                      "(continuation ≤ kappa).",
                      fig["lines"], "score_lines")
        widgets.chart("Loss and accuracy", "Training loss as it goes, and training (blue) and test (red; "
                      "validation: dotted, with held-out validation images) accuracy after each epoch: "
                      "dropping layers that stopped learning should not cost much test accuracy.",
                      fig["loss"], "loss_acc")
        widgets.chart("FLOPs per epoch and in total", "Forward and backward FLOPs actually run, against the "
                      "full network's for the same steps (dashed); the gap on the right is the compute "
                      "saved. FLOPs count a convolution's or matrix product's multiply-adds (MAC) twice: "
                      "2·MAC.",
                      fig["flops"], "flops")
    if int(view.config.get("stream") or 1) > 1:
        stream_panel(view, chunks)
    inside_ui.latest(inside_ui.load(reg.store.path(run_id)), run_id)
    st.markdown("**Event log**")
    widgets.event_log(view, "event_log")


def queued_baseline(view) -> str:
    """The wait the time-left estimate does not count: the baseline queued behind this run trains the full
    network for as many epochs, estimated from this run's first epoch (before anything dropped)."""
    epochs = view.table("epochs")
    total = int(view.config.get("epochs") or 1) * int(view.config.get("stream") or 1)
    if epochs.empty:
        return ("Then its baseline, queued behind it: a full training of as many epochs, about as long again "
                "or more.")
    each = float(epochs["epoch_time_s"].iloc[0] + epochs["eval_time_s"].iloc[0])
    return (f"Then its baseline, queued behind it: a full training of {total} epochs, about "
            f"{duration(each * total)} more (timed by this run's first epoch, before anything dropped).")


def stream_panel(view, chunks) -> None:
    """A streaming run's evaluation after each data chunk: on the whole test set and on the classes seen."""
    per_chunk = int(view.config.get("epochs") or 1)
    by = "new classes" if view.config.get("stream_by") == "class" else "more images"
    left, right = st.columns([2, 3])
    with left:
        widgets.chart("Accuracy after each data chunk", f"The data arrive in chunks ({by} each), each "
                      f"trained {per_chunk} epoch(s); a thin line marks each chunk's start on the charts "
                      "above. After each chunk the network is tested on the whole test set and on the "
                      "classes it has seen so far.",
                      view.derived("chunk_acc", ("chunks",), lambda: plots.chunk_accuracy(chunks)),
                      "chunk_acc")
    with right:
        st.markdown("**Per data chunk**")
        st.table(tables.chunk_table(chunks, per_chunk), hide_index=True, border="horizontal")
