"""Threshold explorer: replay a finished run's recorded scores under other thresholds, instantly."""

import dataclasses

import streamlit as st

from dashboard import state, widgets
from dashboard.form import PACE_FROM, PACED
from learndrop.config import PolicyConfig
from learndrop.report import plots
from learndrop.report.compare import run_label
from learndrop.report.replay import data_chunks, recorded_schedule_flops, replay_run
from learndrop.status import REPLAYABLE

state.require_app()
st.title("Threshold explorer")
st.caption("The sliders replay a finished run's recorded changes through the same policy code the training "
           "loop uses, and show which units would have dropped when, and the forward FLOPs that would have "
           "saved.")

registry = state.registry()
finished = [r for r in registry.run_ids() if registry.status(r) in REPLAYABLE]
if not finished:
    st.info("No finished run yet: train one on the Train page (the Quick demo takes well under a minute).")
    st.stop()
current = state.selected()
run_id = st.selectbox("Finished run", finished, index=finished.index(current) if current in finished else 0,
                      format_func=lambda r: run_label(registry.summary(r)),
                      help="A baseline run (policy none) recorded every unit at every check: replaying it is "
                      "exact.")
if run_id != current:  # the URL (and the sidebar) name the run shown
    state.select(run_id)
    st.rerun()
view = registry.view(run_id)
if view.started is None or view.table("scores").empty:
    st.info("This run recorded no checks, so there is nothing to replay.")
    st.stop()

recorded_policy = PolicyConfig.from_record(view.config.get("policy") or {})
recorded = recorded_policy.thresholds()
# a run of another policy (a baseline) replays under today's pace
paced_policy = recorded_policy if recorded_policy.name == "learndrop" else PolicyConfig()
c = st.columns(4)
tau = c[0].slider("tau", 0.01, 1.0, float(recorded["tau"]), 0.01, key=f"x_tau_{run_id}")
kappa = c[1].slider("kappa", 0.05, max(3.0, float(recorded["kappa"])), float(recorded["kappa"]), 0.05,
                    key=f"x_kappa_{run_id}", help="How far a unit's change may still grow and the unit drop: "
                    "its continuation score c = d(t)/d(t−w), the change now over the change w checks ago, "
                    "at most kappa.")
warmup = c[2].slider("warm-up (checks)", 0, max(20, int(recorded["warmup"])), int(recorded["warmup"]),
                     key=f"x_warmup_{run_id}")
patience = c[3].slider("patience (checks)", 1, max(10, int(recorded["patience"])), int(recorded["patience"]),
                       key=f"x_patience_{run_id}")
p = st.columns([1, 3])
paced = p[0].toggle("Paced", paced_policy.paced, key=f"x_paced_{run_id}", help=PACED)
start = p[1].slider("pace from (share of training)", 0.0, 0.95, min(paced_policy.pace_start, 0.95), 0.05,
                    key=f"x_start_{run_id}", disabled=not paced, help=PACE_FROM)
policy = dataclasses.replace(recorded_policy, name="learndrop", tau=tau, kappa=kappa, warmup=warmup,
                             patience=patience, paced=paced, pace_start=start)

scores, checks, drops, units, chunks = (view.table(n)
                                        for n in ("scores", "checks", "drops", "units", "chunks"))
started, summary = view.started, view.summary()
# the cache also serves augmented runs (a fixed set of exact views per image): off only when turned off
# or too big
cached = bool(view.config.get("cache", True)) and not view.of_type("cache_skipped")
args = (started.units, data_chunks(started, chunks), cached)
whatif = replay_run(scores, checks, policy, *args, started.inherited_peaks, started.total_steps)
estimate, full = recorded_schedule_flops(scores, checks, *args)

m = st.columns(3)
quiet = {"delta_color": "off", "delta_arrow": "off"}
m[0].metric("Units dropped (these thresholds)", len(whatif.drops), f"recorded: {len(drops)}", **quiet)
m[1].metric("Forward FLOPs saved (estimate)", f"{whatif.fwd_reduction_pct or 0:.1f} %",
            f"recorded: {summary.get('fwd_flops_reduction_pct') or 0:.1f} % measured", **quiet)
m[2].metric("First drop", f"check {int(whatif.drops['check'].min())}" if len(whatif.drops) else "none",
            f"recorded: check {int(drops['check'].min())}" if len(drops) else "recorded: none", **quiet)

st.caption("Left, what the run did; right, the same recorded changes replayed under the sliders' thresholds: "
           "training (blue), candidates (orange), dropped (grey) units at each check. After a unit's "
           "recorded drop its change is unknown and the replay counts it as not moving, so replay a baseline "
           "run to explore thresholds stricter than the recorded ones.")
left, right = st.columns(2)
with left:
    widgets.chart("What happened", None, plots.active_network(scores, drops, chunks), "recorded_network")
with right:
    widgets.chart("With these thresholds", None, plots.active_network(whatif.scores, whatif.drops, chunks),
                  "replayed")
widgets.chart("Forward FLOPs of training", "Measured for the recorded run, and estimated from each unit's "
              "FLOPs for the recorded and the replayed drop schedules (the estimate's error shows in the "
              "first two bars). Conv/matmul FLOPs = 2·MAC.",
              plots.flops_bars({"recorded run (measured)": summary.get("fwd_flops"),
                                "recorded drops (estimated)": estimate,
                                "these thresholds (estimated)": whatif.fwd_flops},
                               summary.get("baseline_fwd_flops") or full), "whatif_flops")
st.markdown("**Drops with these thresholds**")
st.table(whatif.drops[["unit", "epoch", "check", "reason"]].assign(epoch=lambda d: d["epoch"] + 1),
         hide_index=True, border="horizontal")
