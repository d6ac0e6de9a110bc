"""One malformed run folder takes nothing down: `learndrop runs` lists it as damaged with what is wrong, `show`
says so in one line, and every page of the dashboard goes on, whichever run is selected; the other runs stay
usable. Before, each of these folders ended every page and both commands in a traceback."""

from __future__ import annotations

import json

import pytest
from fake_run import write_fake_run
from test_app import PAGES, open_page

from learndrop.cli import main
from learndrop.runs.store import RunStore


def _events(store: RunStore, run_id: str) -> list[dict]:
    return [json.loads(line) for line in (store.path(run_id) / "events.jsonl").read_text().splitlines()]


def _rewrite_events(store: RunStore, run_id: str, change) -> None:
    lines = [change(e) for e in _events(store, run_id)]
    (store.path(run_id) / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))


def _null_flops(event: dict) -> dict:
    return {**event, "fwd_flops": None} if event["type"] == "epoch_ended" else event


def _string_score(event: dict) -> dict:
    if event["type"] == "unit_scores":
        return {**event, "scores": [{**s, "s": "high"} for s in event["scores"]]}
    return event


DAMAGE = {  # what each folder has wrong; None: a fault mended where it is read (the run stays usable)
    "config.json holds null": ("config", "null", "config.json holds null"),
    "config.json is not JSON": ("config", "{not json", "config.json is not readable JSON"),
    "policy is a name, not settings": ("policy", "learndrop", "policy must be an object"),
    "tau is text": ("tau", "x", "tau must be a number"),
    "events.jsonl is gone": ("no events", None, "events.jsonl is missing"),
    "an epoch_ended with fwd_flops null": ("events", _null_flops, None),
    "a score that is text": ("events", _string_score, None),
    "summary.json missing keys": ("summary", {"status": "completed", "summary_version": 4}, None),
    "a byte that is not UTF-8 in inside.jsonl": ("inside", b'{"kind": "images", "labels": [\xff]}\n', None),
}


def _damage(store: RunStore, run_id: str, how: str) -> None:
    kind, value, _ = DAMAGE[how]
    folder = store.path(run_id)
    config = json.loads((folder / "config.json").read_text())
    if kind == "config":
        (folder / "config.json").write_text(value)
    elif kind == "policy":
        (folder / "config.json").write_text(json.dumps({**config, "policy": value}))
    elif kind == "tau":
        (folder / "config.json").write_text(json.dumps({**config, "policy": {**config["policy"], "tau": value}}))
    elif kind == "no events":
        (folder / "events.jsonl").unlink()
    elif kind == "events":
        _rewrite_events(store, run_id, value)
    elif kind == "summary":
        (folder / "summary.json").write_text(json.dumps(value))
    elif kind == "inside":
        (folder / "inside.jsonl").write_bytes(value)


@pytest.fixture
def damaged(runs: RunStore, request) -> tuple[str, str, str]:
    """A good run, and a run damaged as the test's parameter says (the newest: selected first everywhere); it
    was interrupted, so its summary is computed from its events whenever it is read."""
    good = write_fake_run(runs, units=6, epochs=4, checks_per_epoch=2)
    bad = write_fake_run(runs, units=6, epochs=4, checks_per_epoch=2, finished=False)
    _damage(runs, bad, request.param)
    return good, bad, request.param


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_the_cli_lists_a_damaged_run_as_damaged_and_shows_the_others(damaged, runs, capsys):
    good, bad, how = damaged
    assert main(["runs", "--runs-dir", str(runs.root)]) == 0
    out = capsys.readouterr().out
    assert good in out and bad in out
    if DAMAGE[how][2] is not None:
        assert f"{bad} is damaged: " in out and DAMAGE[how][2] in out
        assert main(["show", bad, "--runs-dir", str(runs.root)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"error: run {bad} is damaged: " in err
    else:
        assert main(["show", bad, "--runs-dir", str(runs.root)]) == 0
    assert main(["show", good, "--runs-dir", str(runs.root)]) == 0
    assert "completed" in capsys.readouterr().out


@pytest.mark.parametrize("how", list(DAMAGE))
def test_the_store_says_what_is_wrong_or_mends_it(how, runs):
    bad = write_fake_run(runs, units=6, epochs=4, checks_per_epoch=2)
    _damage(runs, bad, how)
    summary = runs.summary(bad)
    expected = DAMAGE[how][2]
    if expected is None:
        assert summary["status"] == "completed" and runs.problem(bad) is None
        assert all(isinstance(summary[k], (int, float)) for k in ("fwd_flops", "train_time_s"))
    else:
        assert summary["status"] == "damaged" and expected in summary["error"] and expected in runs.problem(bad)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("damaged", ["config.json holds null", "an epoch_ended with fwd_flops null",
                                     "a score that is text", "summary.json missing keys",
                                     "a byte that is not UTF-8 in inside.jsonl", "events.jsonl is gone"],
                         indirect=True)
def test_every_page_goes_on_with_a_damaged_run_selected_or_beside_the_others(page, damaged, runs):
    good, bad, _ = damaged
    for selected in (bad, good):
        at = open_page(page, selected)  # asserts no exception
        assert at.title, "the page was drawn"
    at = open_page("pages/train.py", bad)
    if runs.summary(bad)["status"] == "damaged":
        assert any("damaged" in e.value for e in at.error)
