"""How it works: the method in plain words, with figures drawn from a real recorded run."""

import streamlit as st

from dashboard import state, widgets
from dashboard.form import thresholds_from_config
from learndrop.report import plots
from learndrop.report.compare import run_label
from learndrop.status import RECORDED

state.require_app()
st.title("How it works")
registry = state.registry()
candidates = [r for r in [state.selected(), *registry.run_ids()] if r and registry.status(r) in RECORDED]
run_id = next((r for r in candidates if registry.summary(r).get("dropped")),
              candidates[0] if candidates else None)
view = registry.view(run_id) if run_id else None
st.markdown(
    "Training a CNN spends most of its compute on the feature extractor, unit after unit (a **unit** is a "
    "block of layers that trains and drops together: a conv with its BatchNorm, or a residual block). The "
    "units near the input usually settle first: after a while their weights hardly move, yet every step "
    "still runs them forward and backward. **Learn&Drop** (Cruciata et al., *Neural Computing & "
    "Applications*, 2024) measures how much each unit still changes and stops training the front units once "
    "they have stopped learning, so the network being trained gets smaller as training goes on. The exact "
    "formulas of the paper are not public; this project defines them as below."
    + (f" The figures come from the recorded run *{run_label(view.summary())}*." if view else ""))
if view is None or view.table("scores").empty:
    st.info("Start the Quick demo on the Train page: once it has run, this page explains the method with its "
            "figures.")

st.header("1 · Change score and continuation score")
st.markdown(
    "At every check each unit still training is measured: its **change** `d` is how far all its weights "
    "moved since the last check, relative to their size. The **change score** `s = d / (largest d so far)` "
    "says how fast the unit learns now compared with its own fastest moment: near 1 it is busy, near 0 it "
    "has settled, and one threshold **tau** serves every unit. The **continuation score** "
    "`c = d(t) / d(t − w)` compares the change with the change a few checks ago: below 1 the unit is "
    "slowing down, above 1 it is learning again. A unit becomes a drop candidate when `s ≤ tau` and "
    "`c ≤ kappa` after the warm-up, for `patience` checks in a row: **tau** is how settled a unit must be, "
    "**kappa** how far its change may still grow (1: not at all).")
if view is not None and not view.table("scores").empty:
    scores, drops = view.table("scores"), view.table("drops")
    names = view.unit_names()
    unit = st.selectbox("Unit", names, index=names.index(drops["unit"].iloc[0]) if len(drops) else 0,
                        key="unit")
    t = thresholds_from_config(view.config)
    widgets.chart(f"{unit}: change, and its two scores", "Top: the unit's change per check and its running "
                  "peak. Bottom: s falls as the change shrinks against its peak; the unit may drop once both "
                  "scores are under their dashed thresholds.",
                  plots.unit_story(scores, unit, t["tau"], t["kappa"], view.table("chunks")), "story")

st.header("2 · Why only a prefix can be dropped")
st.markdown(
    "A unit's input is the output of the units before it. Freezing a unit while a unit in front of it still "
    "learns would feed it inputs that keep changing, so nothing could be reused and its frozen weights would "
    "go stale. So only the **front** of the network drops, in order: a unit that is ready behind a unit "
    "still learning stays a *candidate* (orange) until the units before it are dropped too. The dropped "
    "front units are the **prefix**; the first unit still training is the **frontier**. The head always "
    "trains, and so does the last unit before it, so that the head has features to learn from.")
st.markdown(
    "The frontier also keeps a **pace** (the default): unit i of the m droppable ones drops no earlier than "
    "`0.25 + 0.75·(i + 1)/m` of training, however settled it looks, so a candidate at the front may be "
    "waiting for its time. Dropping as soon as the scores allowed sometimes took the front too early (on "
    "MNIST: 41 % of the FLOPs saved for 0.71 points lost); paced, Learn&Drop landed above the line of "
    "simply training for fewer epochs, or less than half a point under it, on every pair measured. The "
    "Threshold explorer replays a run with the pace on or off.")
if view is not None and not view.table("scores").empty:
    widgets.chart("The network, check by check", "Blue units train, orange ones are candidates waiting for "
                  "the front, grey ones are dropped.",
                  plots.active_network(view.table("scores"), view.table("drops")), "prefix")
st.markdown("Why the front settles first: the first units learn general features (edges, colours, simple "
            "textures) that every later unit builds on, and they find them early. See it happen:")
st.page_link("pages/look_inside.py", label="Look inside: the filters and feature maps of each unit, check by "
             "check, and the front units turning grey as they drop", icon=":material/visibility:")

st.header("3 · What the cache saves")
built = view.of_type("cache_built") if view else []
st.markdown(
    "A dropped prefix gets no gradients, so its backward pass is saved at once. When the input images are "
    "not randomly augmented, the prefix also computes the same output for every image in every epoch: "
    "Learn&Drop computes that output **once** for the whole training set, keeps it (capped in size), and "
    "from then on each step starts at the first unit still training, so the prefix costs no forward FLOPs "
    "either. Evaluation and the saved model always use the full network." + (
        f" In this run the cache last held the output of the first {built[-1].units} unit(s): "
        f"{built[-1].bytes / 2**20:.1f} MiB, built in {built[-1].seconds:.2f} s." if built else ""))
if view is not None and view.started is not None:
    widgets.chart("Where the compute is", "Forward and backward FLOPs per image of each unit and the head; "
                  "the shaded prefix is what this run dropped by its end.",
                  plots.flops_by_unit(view.table("units"), len(view.table("drops"))), "unit_flops")

st.header("4 · What \"FLOPs\" counts here")
st.markdown(
    "FLOPs are counted with PyTorch's `FlopCounterMode` on one training step each time the trained network "
    "changes, then multiplied by the steps run. Only convolutions and matrix multiplications count, at "
    "**2 FLOPs per multiply-accumulate (2·MAC)**; BatchNorm, ReLU and pooling count zero. *Forward FLOPs "
    "saved* is the paper's headline figure; *training FLOPs* add the backward pass; building the cache is "
    "charged to the run. A measured time speedup is usually smaller than the FLOPs suggest: memory traffic, "
    "the head and per-step overheads do not shrink with the network.")
