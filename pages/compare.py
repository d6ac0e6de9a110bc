"""Compare runs: accuracy against time and epochs, FLOPs per epoch, a summary table, CSV and JSON export."""

import streamlit as st

from dashboard import state, widgets
from learndrop.report import plots
from learndrop.report.compare import compare_table, export_json, run_label, same_setup
from learndrop.report.frontier import FLOPS, SECONDS
from learndrop.status import RECORDED

state.require_app()
st.title("Compare runs")
st.caption("Pick runs to overlay. Learn&Drop should reach the same accuracy as its baseline in less time.")

registry = state.registry()
run_ids = [r for r in registry.run_ids() if registry.status(r) in RECORDED]
if not run_ids:
    st.info("No recorded runs yet: start one on the Train page.")
    st.stop()

current = state.selected()
default = ([r for r in (current, current and state.comparable_baseline(current)) if r in run_ids]
           or run_ids[:2])
summaries = {r: registry.summary(r) for r in run_ids}
chosen = st.multiselect("Runs", run_ids, default=default, format_func=lambda r: run_label(summaries[r]),
                        key="runs")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()
baselines = [r for r in chosen if summaries[r].get("policy") == "none"] + [r for r in chosen]
baseline = st.selectbox("Baseline for speedup and accuracy delta", list(dict.fromkeys(baselines)),
                        format_func=lambda r: run_label(summaries[r]), key="baseline")

epochs = {r: registry.view(r).table("epochs") for r in chosen}
named = {run_label(summaries[r]): epochs[r] for r in chosen}
# streaming runs' chunk starts
chunks = {run_label(summaries[r]): registry.view(r).table("chunks") for r in chosen}
left, right = st.columns(2)
with left:
    widgets.chart("Time to accuracy", "Test accuracy after each epoch against the training time spent so far "
                  "(evaluation excluded): the further left a curve reaches an accuracy, the faster the run "
                  "got there.",
                  plots.compare_lines(named, "train_time_s", "test_acc", "training time (s)",
                                      "test accuracy (%)", 100, chunks=chunks), "time_to_acc")
    widgets.chart("Training FLOPs per epoch", "Forward plus backward FLOPs of each epoch "
                  "(conv/matmul FLOPs = 2·MAC); Learn&Drop's fall as the front of the network drops, the "
                  "baseline's stay flat.",
                  plots.compare_lines(named, "epoch_number", "flops", "epoch", "training FLOPs per epoch",
                                      chunks=chunks), "flops_per_epoch")
with right:
    widgets.chart("Accuracy per epoch", "The same accuracy against epochs: do the runs learn equally well "
                  "per pass over the data?",
                  plots.compare_lines(named, "epoch_number", "test_acc", "epoch", "test accuracy (%)", 100,
                                      chunks=chunks), "acc_by_epoch")
    widgets.chart("Training time per epoch", "Wall-clock seconds each epoch took to train (evaluation "
                  "excluded); where FLOPs fall, time should follow.",
                  plots.compare_lines(named, "epoch_number", "epoch_time_s", "epoch", "training time (s)",
                                      chunks=chunks), "time_per_epoch")

setup = [{**summaries[r], "name": run_label(summaries[r])} for r in same_setup(chosen[0], {
    r: registry.config(r) for r in run_ids if summaries[r].get("status") == "completed"})]
axis = st.segmented_control("Cost axis", [SECONDS, FLOPS], default=SECONDS, key="frontier_axis",
                            format_func={SECONDS: "training time", FLOPS: "training FLOPs"}.get) or SECONDS
widgets.chart("Against the baseline trained for fewer epochs", "Every completed run of the first chosen "
              "run's set-up (model, data, lr, schedule, batch; epochs and policy may differ): the baseline's "
              "runs at their epoch budgets make the line (their mean where a budget has several, never "
              "falling), each other run is a point of its policy, its margin above or below the line in "
              "points (on the chart while few, always on hover). On a busy machine seconds swing; the FLOPs "
              "(forward and backward run) do not.",
              plots.frontier_chart([p for p in setup if p["policy"] == "none"],
                                   [p for p in setup if p["policy"] != "none"], axis=axis), "frontier")

table = compare_table([summaries[r] for r in chosen], epochs, baseline)
st.markdown("**Summary**")
st.caption("Speedup = the baseline's training time / the run's, over the epochs both ran; fwd and train: "
           "forward and training FLOPs saved; Δ: test accuracy against the baseline, in percentage points.")
short = {"training time (s)": "time (s)", "speedup": "speedup ×", "forward FLOPs reduction (%)": "fwd −%",
         "training FLOPs reduction (%)": "train −%", "test accuracy (%)": "test acc. %",
         "accuracy delta (pp)": "Δ pp", "validation accuracy (%)": "val. acc. %", "units dropped": "dropped"}
shown = ["run", "epochs", *short]  # status, policy, model, data set and full id are in the downloads
st.dataframe(table, hide_index=True, key="summary_table", width="stretch", column_order=shown,
             column_config={"run": st.column_config.Column(width="medium"),
                            **{k: st.column_config.Column(v, width="small") for k, v in short.items()}})
c1, c2, _ = st.columns([1, 1, 4])
c1.download_button("Download CSV", table.to_csv(index=False), "learndrop-runs.csv", "text/csv", key="csv")
c2.download_button("Download JSON", export_json([summaries[r] for r in chosen], epochs),
                   "learndrop-runs.json", "application/json", key="json")
