"""The dashboard in a real headless Chromium (Playwright driving Debian's chromium, never a downloaded one).

Start the Quick demo on the Train page, watch the heatmap and the FLOPs chart fill in while it trains
(in two browser sessions at once), see a drop in the event log, stop it, reload and find the same run,
then open every other page with that run. Skipped, with the reason, where no chromium is found.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import ROOT

from learndrop import events as ev
from learndrop.runs.store import RunStore

CHROMIUM = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                                             if Path(p).is_file()), None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TRAINING_TIMEOUT_MS = 240_000  # the demo's first drop; generous for a busy 2-core CI machine

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - requirements.txt installs it
    sync_playwright = None

pytestmark = [
    pytest.mark.slow,  # a streamlit server in a subprocess, driven by headless Chromium
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (install Debian's chromium: .ci/run does)"),
    pytest.mark.skipif(sync_playwright is None, reason="the playwright Python package is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The server's runs folder."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(runs):
    """``streamlit run app.py`` on a free port, with its own runs folder; stopped afterwards."""
    port = free_port()
    log = open(runs.parent / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "LEARNDROP_RUNS_DIR": str(runs)}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start: {(runs.parent / 'streamlit.log').read_text()[-2000:]}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# x values of the first trace of the chart with this key, as Plotly.js drew it (0 before it is drawn)
POINTS_JS = """(key) => {
    const el = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
    const trace = el && el._fullData && el._fullData[0];
    return trace && trace.x ? trace.x.length : 0 }"""


def chart_points(page, key: str) -> int:
    return page.evaluate(POINTS_JS, key)


def wait_for_points(page, key: str, at_least: int, timeout_ms: int = TRAINING_TIMEOUT_MS) -> int:
    page.wait_for_function(f"([key, n]) => ({POINTS_JS})(key) >= n", arg=[key, at_least], timeout=timeout_ms,
                           polling=200)
    return chart_points(page, key)


def no_exceptions(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0


def thresholds_reached(runs: Path, run_id: str, timeout_s: float, **expected: float) -> bool:
    """Whether the run itself (its events.jsonl, read by the run store) recorded thresholds changed to
    ``expected`` in time."""
    store, deadline = RunStore(runs), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for e in store.events(run_id).events if store.exists(run_id) else []:
            if isinstance(e, ev.ThresholdsChanged) and all(e.new.get(k) == v for k, v in expected.items()):
                return True
        time.sleep(0.2)
    return False


@pytest.fixture
def page_on_failure(request, runs):
    """Pages registered here are saved as screenshots next to the runs folder when the test fails."""
    pages = []
    yield pages
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for i, page in enumerate(pages):
            if not page.is_closed():
                shot = runs.parent / f"failure-{i}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the page at the failure: {shot}")


def test_quick_demo_live_stop_reload_and_every_page(server, runs, browser, page_on_failure):
    t0 = time.monotonic()
    mark = lambda what: print(f"{time.monotonic() - t0:6.1f} s  {what}")  # noqa: E731 - shown with -s or on failure
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page_on_failure.append(page)
    page.goto(server)
    expect(page.get_by_role("heading", name="Train")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(re.compile(r"\?run="), timeout=30_000)
    run_id = page.url.split("run=")[1]
    mark(f"started {run_id}")

    # the heatmap fills in check by check while it trains; a second session watches the same run
    first = wait_for_points(page, "heatmap", 1)
    mark("first check drawn")
    other = browser.new_page(viewport={"width": 1280, "height": 800})
    other.goto(f"{server}/?run={run_id}")

    # moving tau and kappa to their maximum while it runs makes every unit a candidate from the next check
    for name in ("tau (change score ≤)", "kappa (continuation ≤)"):
        page.get_by_role("slider", name=name).press("End")
    later = wait_for_points(page, "heatmap", first + 1)
    assert later > first
    assert wait_for_points(other, "heatmap", later) >= later
    other.close()
    mark("second check drawn in both sessions")

    # the change reached the run (its next check records it), the event log shows the drops with their
    # reason, and the charts mark the moment of the change
    reached = thresholds_reached(runs, run_id, TRAINING_TIMEOUT_MS / 1000, tau=1.0, kappa=3.0)
    assert reached, "the slider moves never reached the run"
    mark("threshold change recorded by the run")
    expect(page.get_by_text(re.compile(r"dropped: change \d")).first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    page.wait_for_function(r"""() => { const el = document.querySelector('.st-key-heatmap .js-plotly-plot');
        return el && el._fullLayout && (el._fullLayout.annotations || []).some(a => /tau [\d.]+→1/.test(a.text)) }""",
                           timeout=60_000, polling=200)
    wait_for_points(page, "flops", 1)  # an epoch has ended: its FLOPs are drawn
    mark("drop, threshold change and FLOPs shown")
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(re.compile(r"· stopped: epoch"))).to_be_visible(timeout=60_000)
    no_exceptions(page)
    mark("stopped")

    # a reload (or a shared link) re-attaches to the same run
    page.reload()
    expect(page.get_by_text(re.compile(r"· stopped: epoch"))).to_be_visible(timeout=60_000)
    assert page.url.endswith(f"?run={run_id}")
    assert wait_for_points(page, "heatmap", later, timeout_ms=60_000) >= later  # drawn a moment after the status
    mark("reloaded")

    for name, title, key in [("Compare runs", "Compare runs", "time_to_acc"),
                             ("Threshold explorer", "Threshold explorer", "replayed"),
                             ("How it works", "How it works", "story")]:
        page.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=60_000)
        wait_for_points(page, key, 1, timeout_ms=60_000)
        no_exceptions(page)
        assert run_id in page.url
        mark(f"{name} shown")

    # Look inside: the maps of the run; stepping the slider back to the first check redraws them
    page.get_by_role("link", name="Look inside", exact=True).click()
    expect(page.get_by_role("heading", name="Look inside")).to_be_visible(timeout=60_000)
    drawn = f"""() => {{ const el = document.querySelector('.st-key-maps_{run_id} .js-plotly-plot');
        return el && el._fullData && el._fullData.length > 0 }}"""
    page.wait_for_function(drawn, timeout=60_000, polling=200)
    slider = page.get_by_role("slider", name="Check")
    last = slider.get_attribute("aria-valuetext")  # the check's label, "2 (epoch 1)": the newest check first
    slider.press("Home")
    expect(slider).to_have_attribute("aria-valuetext", re.compile(r"^1 \(epoch 1\)"), timeout=30_000)
    assert last and not last.startswith("1 ")
    page.wait_for_function(drawn, timeout=60_000, polling=200)
    no_exceptions(page)
    page.screenshot(path=str(runs.parent / "look-inside-check-1.png"), full_page=True)
    mark("Look inside stepped to check 1")
    page.close()
