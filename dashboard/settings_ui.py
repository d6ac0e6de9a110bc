"""The Train page's run settings: presets, every training field, Start (the form itself is form.py)."""

from __future__ import annotations

import streamlit as st

from learndrop.config import PolicyConfig
from learndrop.errors import LearnDropError
from learndrop.status import RunState

from . import state
from .form import (
    DATASET_CHOICES,
    DEVICE_CHOICES,
    MODEL_CHOICES,
    POLICY_CHOICES,
    PRESETS,
    PRETRAINED,
    QUICK_DEMO,
    SCRATCH,
    STREAM_BY_CHOICES,
    THRESHOLDS,
    config_from_fields,
    fields_from_config,
    thresholds_from_config,
    widget_of,
)

HELP = {
    "model": "A network from the model registry; 'tiny' is the 6-unit demo CNN.",
    "width": "Channel multiplier: 0.5 halves every layer's channels (not for ResNet-18/50/152).",
    "dataset": "'shapes' is generated here (offline). 'folder' trains on an ImageFolder you type as data "
               "root.",
    "data_root": "Folder the data set lives in (or is downloaded to); for 'folder', the image folder itself.",
    "download": "Let torchvision download the data set when it is missing (needs internet).",
    "augment": "Random crop and flip. The activation cache then holds a fixed set of exact crops and mirror "
               "images of each image.",
    "checks_per_epoch": "How often the units are scored and the policy decides.",
    "baseline": "Train the same run with policy 'none' right after, same seed and data order, to measure the "
                "speedup.",
    "init": "Fine-tuning: ImageNet weights (timm:efficientnet_lite0's ship in a package, offline; "
            "torchvision's ResNet-18/50/152 are downloaded once), or the model an earlier run of the same "
            "model and width saved. The head is always new, for this run's classes.",
    "weights": "Start from this state dict file instead (the model's own keys, or those of the torchvision "
               "or timm model it is cut from); a head that does not fit stays new. Empty: none.",
    "subset": "Train on the first N training images only (of an image folder's fixed shuffled order). 0: "
              "all.",
    "classes": "Train and test on these class indices only, e.g. 5-9 or 0,2,4 (renumbered from 0). Empty: "
               "all.",
    "stream": "Online training: 1 = all the data from the start. K > 1: the training set arrives in K "
              "chunks, one after another, each trained for 'Epochs' epochs; scores, drops and the cache "
              "carry over.",
    "stream_by": "order: chunks in the data's order; class: each chunk brings new classes.",
    "tensorboard": "Also write each run's TensorBoard log to a subfolder (named by its run id) of this "
                   "folder: `tensorboard --logdir` it to see the scores, FLOPs and drops there. Empty: no "
                   "log.",
    "world_size": "Data-parallel training on this many processes (torchrun, PyTorch's "
                  "DistributedDataParallel): one per GPU, or CPU processes. Batch size is the global batch, "
                  "split among them. Such a run can be stopped but not paused or retuned while it trains.",
    "paced": "Learn&Drop's pace (the default): a unit that has stopped learning still waits for its time on "
             "a linear schedule from 25 % of training to the end. Off: it drops as soon as the rule says.",
    "val_split": "Training images held out as a validation split (the same ones for every run on these "
                 "data), evaluated each epoch beside the test set. 0: none.",
}
STREAM_BY_LABELS = {"order": "in data order", "class": "by class (new classes arrive)"}


# --- settings -----------------------------------------------------------------------------------------
def _set_fields(fields: dict, thresholds: dict | None = None) -> None:
    for name, value in fields.items():
        kind = type(QUICK_DEMO[name])  # number inputs refuse a value of another type than their bounds
        st.session_state[f"f_{name}"] = kind(value) if kind in (int, float, bool) else value
    for name, value in (thresholds or {}).items():
        st.session_state[f"t_{name}"] = st.session_state[f"_sent_t_{name}"] = value


def _apply_preset() -> None:
    _set_fields(PRESETS[st.session_state["preset"]])


def init_fields(run_id: str | None) -> None:
    """Fill the form once per session, and with a run's own settings whenever another run is attached."""
    ss = st.session_state
    if "f_model" not in ss:  # first visit, or back from another page (Streamlit forgets unseen widgets)
        ss.setdefault("preset", "Quick demo")
        _set_fields({**QUICK_DEMO, **PRESETS[ss["preset"]]}, PolicyConfig().thresholds())
        ss["_fields_of"] = None
    if run_id and ss.get("_fields_of") != run_id:
        ss["_fields_of"] = run_id
        reg = state.registry()
        live = reg.get(run_id)
        try:
            config = live.config.to_dict() if live else (reg.store.config(run_id).to_dict()
                                                           if reg.store.exists(run_id) else None)
        except (LearnDropError, ValueError, OSError):
            config = None  # a config this version cannot read: keep the form as it is
        if config:
            policy = reg.policy(run_id)
            _set_fields(fields_from_config(config),
                        policy.thresholds() if policy else thresholds_from_config(config))
            ss["preset"] = "Custom"


def start_run() -> None:
    ss = st.session_state
    fields = {name: ss[f"f_{name}"] for name in QUICK_DEMO}
    try:
        config = config_from_fields(fields, {name: ss[f"t_{name}"] for name in THRESHOLDS},
                                    state.registry().store)
    except LearnDropError as exc:
        ss["_form_error"] = (widget_of(exc, fields), str(exc))
        return
    try:
        run_id = state.registry().submit(config, with_baseline=bool(fields["baseline"]),
                                         tensorboard=str(fields["tensorboard"]).strip() or None)
    except LearnDropError as exc:  # the form is fine; a folder is not (runs, or the TensorBoard log's)
        ss["_form_error"] = (widget_of(exc, fields), str(exc))
        return
    ss["_form_error"] = None
    ss["_fields_of"] = run_id
    for name in THRESHOLDS:  # the run starts with the sliders' values
        ss[f"_sent_t_{name}"] = ss[f"t_{name}"]
    state.select(run_id)


def settings(run_id: str | None) -> None:
    """The run's settings with presets; a bad field gets its error right under it and nothing starts."""
    error = st.session_state.get("_form_error")
    with st.expander("Run settings", expanded=run_id is None or bool(error), icon=":material/settings:"):
        st.selectbox("Preset", list(PRESETS), key="preset", on_change=_apply_preset,
                     help="Quick demo runs offline in well under a minute on a laptop CPU; its baseline, "
                          "trained right after it when ticked below (the default), takes about as long "
                          "again.")
        cols = st.columns(4)
        layout = [
            [("model", lambda k: st.selectbox("Model", MODEL_CHOICES, key=k)),
             ("width", lambda k: st.number_input("Width", min_value=0.0, step=0.25, key=k)),
             ("policy", lambda k: st.selectbox("Policy", POLICY_CHOICES, key=k,
                                               help="'none' is the baseline: full training, nothing "
                                                    "dropped.")),
             ("paced", lambda k: st.checkbox("Paced", key=k, help=HELP["paced"]))],
            [("dataset", lambda k: st.selectbox("Data set", DATASET_CHOICES, key=k)),
             ("data_root", lambda k: st.text_input("Data root", key=k)),
             ("download", lambda k: st.checkbox("Download if missing", key=k)),
             ("augment", lambda k: st.checkbox("Augmentation", key=k))],
            [("epochs", lambda k: st.number_input("Epochs", min_value=1, step=1, key=k)),
             ("batch_size", lambda k: st.number_input("Batch size", min_value=1, step=16, key=k)),
             ("lr", lambda k: st.number_input("Learning rate", min_value=0.0, step=0.01, format="%.4f",
                                              key=k)),
             ("checks_per_epoch", lambda k: st.number_input("Checks per epoch", min_value=1, step=1, key=k))],
            [("device", lambda k: st.selectbox("Device", DEVICE_CHOICES, key=k,
                                               help="auto: the GPU when there is one, else the CPU.")),
             ("seed", lambda k: st.number_input("Seed", min_value=0, step=1, key=k)),
             ("world_size", lambda k: st.number_input("Processes", min_value=1, max_value=64, step=1, key=k,
                                                      help=HELP["world_size"])),
             ("baseline", lambda k: st.checkbox("With a baseline", key=k))],
        ]
        for col, fields in zip(cols, layout):
            _draw(col, fields, error)
        sources = start_from_choices(st.session_state.get("f_init"))
        cols = st.columns([2, 1, 1, 1])
        layout = [
            # its help is a caption: a help button would be named "Help for Start from", a second "Start"
            # button
            [("init", lambda k: st.selectbox("Start from", sources, key=k, format_func=lambda v: sources[v])),
             ("weights", lambda k: st.text_input("Weights file", key=k,
                                                 placeholder="none (or a state dict .pt)",
                                                 help=HELP["weights"]))],
            [("classes", lambda k: st.text_input("Classes", key=k, placeholder="all (or e.g. 5-9)",
                                                 help=HELP["classes"])),
             ("val_split", lambda k: st.number_input("Validation images", min_value=0, step=500, key=k,
                                                     help=HELP["val_split"]))],
            [("stream", lambda k: st.number_input("Data chunks (streaming)", min_value=1, max_value=10_000,
                                                  step=1, key=k, help=HELP["stream"])),
             ("subset", lambda k: st.number_input("Training images", min_value=0, step=1000, key=k,
                                                  help=HELP["subset"]))],
            [("stream_by", lambda k: st.selectbox("Chunks arrive", STREAM_BY_CHOICES, key=k,
                                                  help=HELP["stream_by"], format_func=STREAM_BY_LABELS.get)),
             ("tensorboard", lambda k: st.text_input("TensorBoard folder", key=k,
                                                     placeholder="none (or e.g. tb)",
                                                     help=HELP["tensorboard"]))],
        ]
        for col, fields in zip(cols, layout):
            _draw(col, fields, error)
        if error and error[0] not in QUICK_DEMO:
            st.error(error[1])


def _draw(col, fields: list, error: tuple[str | None, str] | None) -> None:
    """One column of the form; a field's error right under it."""
    with col:
        for name, draw in fields:
            draw(f"f_{name}")
            if HELP.get(name) and name in ("dataset", "augment", "baseline", "init"):
                st.caption(HELP[name])
            if error and error[0] == name:
                st.error(error[1])


def start_from_choices(current: str | None) -> dict[str, str]:
    """The "Start from" options and their labels: scratch, torchvision's weights, and every ended run of
    this runs folder that saved a model (newest first), labelled with its model, data set and accuracy."""
    reg = state.registry()
    choices = {SCRATCH: "scratch (random weights)", PRETRAINED: "ImageNet weights (pretrained)"}
    for run_id in reg.run_ids()[:state.PICKER_RUNS]:
        if reg.is_live(run_id) or not (reg.store.path(run_id) / "model.pt").is_file():
            continue
        summary = reg.summary(run_id)
        acc = summary.get("test_acc")
        status = summary.get("status")
        choices[run_id] = " · ".join(p for p in (
            f"{summary.get('model')} on {summary.get('dataset')}",
            "accuracy —" if acc is None else f"accuracy {100 * acc:.1f} %",
            None if status == RunState.COMPLETED else str(status), run_id) if p)
    # a run's config names a source that is gone: keep it, Start says so
    if current and current not in choices:
        choices[current] = f"{current} (not in this runs folder)"
    return choices


# --- thresholds and buttons ---------------------------------------------------------------------------
