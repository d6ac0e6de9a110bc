"""Screenshots of every page with a finished Quick demo run (and its baseline), and of a streaming run
with its chunk boundaries, at 1280x800 (Look inside also stepped back to its second check, whole page).

    .venv/bin/python benchmarks/screenshots.py [--out docs/screenshots] [--runs-dir DIR]

Starts its own streamlit server (a temporary runs folder unless --runs-dir names one that already
holds a finished demo), runs the Quick demo from the Train page and waits for its baseline, trains a
streaming run (the demo's data arriving in 3 chunks of new classes) in this process, then saves what a
1280x800 window shows, scrolled to each part of each page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from playwright.sync_api import sync_playwright  # noqa: E402
from ui_latency import ARGS, CHROMIUM, start_server  # noqa: E402

from learndrop.config import RunConfig  # noqa: E402
from learndrop.runs.store import RunStore  # noqa: E402

# page path -> the parts to show, as (file name, element to scroll to the top or None)
SHOTS = {
    "": [("train", None), ("train-charts", ".st-key-heatmap"), ("train-time-flops", ".st-key-epoch_times"),
         ("train-log", ".st-key-event_log_page")],
    "compare": [("compare", None), ("compare-table", ".st-key-flops_per_epoch")],
    "explorer": [("explorer", None), ("explorer-flops", ".st-key-whatif_flops")],
    "how_it_works": [("how-it-works", None), ("how-it-works-scores", ".st-key-story"),
                     ("how-it-works-cache", ".st-key-unit_flops")],
    "look_inside": [("look-inside", None)],
}
# the streaming run: chunk boundaries on the time axes, and its evaluation after each chunk
STREAM_SHOTS = {
    "": [("stream-charts", ".st-key-heatmap"), ("stream-time-flops", ".st-key-epoch_times"),
         ("stream-chunks", ".st-key-chunk_acc")],
    "compare": [("stream-compare", None)],
}
# the demo's data (10 classes of shapes) arriving in 3 chunks of new classes, each trained 3 epochs
STREAM_CONFIG = RunConfig(epochs=3, stream=3, stream_by="class", checks_per_epoch=2)


def finished_demo(runs: Path) -> str | None:
    store = RunStore(runs)
    for run_id in store.run_ids():
        if ("-learndrop-" in run_id and store.config(run_id).stream == 1
                and store.summary(run_id)["status"] == "completed"):
            return run_id  # the newest finished demo-like run that does not stream
    return None


def finished_stream(runs: Path) -> str:
    """A completed streaming run in ``runs``, trained here if there is none."""
    from learndrop.runs.recorder import RunRecorder

    store = RunStore(runs)
    for run_id in store.run_ids():
        if store.config(run_id).stream > 1 and store.summary(run_id)["status"] == "completed":
            return run_id
    return RunRecorder(store).start(STREAM_CONFIG)["run_id"]


def look_inside_stepped(page, url: str, run_id: str, out: Path) -> Path:
    """The Look inside page stepped back to the second check: the front units still train there."""
    page.goto(f"{url}/look_inside?run={run_id}")
    slider = page.get_by_role("slider", name="Check")
    slider.wait_for(timeout=60_000)
    slider.press("Home")
    slider.press("ArrowRight")
    time.sleep(2.0)
    target = out / "look-inside-check-2.png"
    page.screenshot(path=str(target), full_page=True)
    return target


def run_demo(page, url: str) -> str:
    page.goto(url)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url("**/?run=*", timeout=60_000)
    # the baseline trains right after the demo; the page stops polling when both are done
    page.get_by_text("Speedup vs baseline").wait_for(timeout=900_000)
    page.get_by_text("baseline · running").wait_for(state="detached", timeout=900_000)
    return page.url.split("run=")[1]


def shoot(page, url: str, run_id: str | None, out: Path, shots: dict = SHOTS) -> list[Path]:
    saved = []
    for path, parts in shots.items():
        page.goto(f"{url}/{path}?run={run_id}" if run_id else f"{url}/{path}")
        if run_id:
            page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].length > 0 &&
                [...document.querySelectorAll('[class*="st-key-"] .js-plotly-plot')].every(el =>
                    el._fullData && el._fullData.length > 0)""", timeout=120_000)
        else:
            page.get_by_text("Start from").first.wait_for(timeout=60_000)
        page.mouse.move(0, 0)
        time.sleep(1.0)
        for name, anchor in parts:
            if anchor:
                page.evaluate("""(sel) => { const main = document.querySelector('[data-testid=stMain]');
                    const el = document.querySelector(sel);
                    main.scrollTo(0, el.getBoundingClientRect().top + main.scrollTop - 70); }""", anchor)
                time.sleep(0.6)
            assert page.locator("[data-testid=stException]").count() == 0, f"exception on {path or 'train'}"
            target = out / f"{name}.png"
            page.screenshot(path=str(target))
            saved.append(target)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--runs-dir", type=Path, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs_dir or Path(tmp) / "runs"
        proc, url = start_server(runs)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                run_id = finished_demo(runs) or run_demo(page, url)
                stream_id = finished_stream(runs)
                shots = [*shoot(page, url, run_id, args.out), *shoot(page, url, stream_id, args.out, STREAM_SHOTS),
                         *shoot(browser.new_page(viewport={"width": 1280, "height": 800}), url, None, args.out,
                                {"": [("train-settings", ".st-key-preset")]}),  # a new session: the form open
                         look_inside_stepped(page, url, run_id, args.out)]
                for path in shots:
                    print(path)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    main()
