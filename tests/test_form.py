"""The Train page's form (dashboard/form.py) without Streamlit: an error lands on the widget its ``field`` names,
whatever its message says; the Classes syntax is the library's."""

from __future__ import annotations

import pytest

from dashboard import form
from learndrop.config import PolicyConfig, RunConfig, parse_classes
from learndrop.errors import LearnDropError


def _fields(**changes) -> dict:
    return {**form.QUICK_DEMO, **changes}


def _error(fields: dict, thresholds: dict | None = None, store=None) -> LearnDropError:
    with pytest.raises(LearnDropError) as caught:
        form.config_from_fields(fields, thresholds or PolicyConfig().thresholds(), store)
    return caught.value


def test_the_widget_comes_from_the_field_not_from_the_words():
    fields = _fields()
    misleading = LearnDropError("the model, the epochs and the learning rate are fine", field="seed")
    assert str(misleading) == "the model, the epochs and the learning rate are fine"  # the message alone
    assert form.widget_of(misleading, fields) == "seed"
    assert form.widget_of(LearnDropError("epochs must be an integer from 1 to 100,000"), fields) is None
    assert form.widget_of(LearnDropError("x", field="momentum"), fields) is None  # no widget for it: by Start
    assert form.widget_of(LearnDropError("x", field="init_from"), fields) == "init"
    assert form.widget_of(LearnDropError("x", field="pretrained"), fields) == "init"
    assert form.widget_of(LearnDropError("x", field="tau"), fields) == "tau"  # a slider
    assert form.widget_of(LearnDropError("x", field="dataset"), fields) == "dataset"
    assert form.widget_of(LearnDropError("x", field="dataset"), _fields(dataset="folder")) == "data_root"


@pytest.mark.parametrize("changes, widget", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"lr": 0.0}, "lr"),
    ({"width": 0.0}, "width"),
    ({"checks_per_epoch": 0}, "checks_per_epoch"),
    ({"stream": 0}, "stream"),
    ({"seed": -1}, "seed"),
    ({"val_split": -1}, "val_split"),
    ({"world_size": 0}, "world_size"),
    ({"world_size": 3}, "batch_size"),  # 128 images do not split among 3 processes
    ({"classes": "five"}, "classes"),
    ({"classes": "3"}, "classes"),  # parsed, then refused by RunConfig.validate (fewer than 2 classes)
    ({"device": "tpu"}, "device"),
    ({"policy": "random"}, "policy"),
    ({"model": "nope"}, "model"),
    ({"init": "pretrained"}, "init"),  # tiny has no torchvision weights
    ({"dataset": "folder", "data_root": ""}, "data_root"),
    ({"dataset": "folder", "data_root": "/nonexistent/images"}, "data_root"),
    ({"dataset": "mnist", "data_root": "/nonexistent/data"}, "data_root"),
])
def test_each_bad_field_lands_on_its_widget(changes, widget):
    fields = _fields(**changes)
    assert form.widget_of(_error(fields), fields) == widget


def test_validation_images_reach_the_config_and_come_back():
    config = form.config_from_fields(_fields(val_split=1000), PolicyConfig().thresholds())
    assert config.val_split == 1000 and form.fields_from_config(config.to_dict())["val_split"] == 1000
    assert form.config_from_fields(_fields(), PolicyConfig().thresholds()).val_split == 0


def test_processes_reach_the_config_and_come_back():
    config = form.config_from_fields(_fields(world_size=2, device="cpu"), PolicyConfig().thresholds())
    assert config.world_size == 2 and form.fields_from_config(config.to_dict())["world_size"] == 2


def test_the_pace_reaches_the_config_and_comes_back_and_an_older_run_reads_unpaced():
    paced = form.config_from_fields(_fields(), PolicyConfig().thresholds())
    assert paced.policy.paced and form.fields_from_config(paced.to_dict())["paced"] is True  # the default
    config = form.config_from_fields(_fields(paced=False), PolicyConfig().thresholds())
    assert not config.policy.paced and form.fields_from_config(config.to_dict())["paced"] is False
    older = paced.to_dict()
    older["policy"] = {k: v for k, v in older["policy"].items() if k not in ("paced", "pace_start")}
    assert form.fields_from_config(older)["paced"] is False  # recorded before the pace was the default


def test_a_bad_threshold_names_its_slider():
    exc = _error(_fields(), {**PolicyConfig().thresholds(), "tau": 1.5})
    assert exc.field == "tau" and form.widget_of(exc, _fields()) == "tau"


def test_a_missing_fine_tuning_source_lands_on_start_from(store):
    fields = _fields(init="20990101-000000-tiny-shapes-none-beef")
    exc = _error(fields, store=store)
    assert str(exc).startswith("start from: there is no run") and form.widget_of(exc, fields) == "init"


def test_config_validation_names_the_field():
    for config, field in [(RunConfig(epochs=0), "epochs"), (RunConfig(lr=-1.0), "lr"), (RunConfig(stream_by="x"),
                          "stream_by"), (RunConfig(policy=PolicyConfig(kappa=0.0)), "kappa"),
                          (RunConfig(policy=PolicyConfig(warmup=-1)), "warmup"), (RunConfig(subset=0), "subset")]:
        with pytest.raises(LearnDropError) as caught:
            config.validate()
        assert caught.value.field == field, (config, caught.value)


def test_classes_syntax():
    assert parse_classes("5-9") == (5, 6, 7, 8, 9) and parse_classes(" 0, 2,4 ") == (0, 2, 4)
    assert parse_classes("") is None and parse_classes(None) is None
    with pytest.raises(LearnDropError, match="classes 'a-b'") as caught:
        parse_classes("a-b")
    assert caught.value.field == "classes"
    assert form.parse_classes("5-7") == (5, 6, 7)


def test_the_checks_made_once_the_data_are_loaded_name_their_field_too():
    """Batch size against the training set is known only in prepare (the worker): its error says the field."""
    from helpers import fast_config

    from learndrop.training.prepare import prepare

    with pytest.raises(LearnDropError, match="larger than the training set") as caught:
        prepare(fast_config(batch_size=1000))  # 512 images
    assert caught.value.field == "batch_size"
