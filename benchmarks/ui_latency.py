"""How fast the dashboard shows what training does, measured in a real headless Chromium.

1. Epoch latency: start the Quick demo from the Train page; for every epoch, the time from its
   ``epoch_ended`` line landing in events.jsonl to the epoch's bar appearing in the browser's
   "Training time per epoch" chart (target: under 2 s).
2. Draw time: the Train page of a finished 100-epoch run of a 50-unit model (synthetic events made
   of the real event classes and decided by the real policy): from navigation to all six charts
   drawn, first and warm loads (target: under 2 s); the same for a 6-unit, 8-epoch run (what the page
   costs whatever the run); plus the server's script time for that page.

    .venv/bin/python benchmarks/ui_latency.py [--epochs 8] [--json out.json]

Needs Debian's chromium (/usr/bin/chromium) and the playwright package; starts and stops its own
streamlit server on a free port with a temporary runs folder.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_run import write_fake_run  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from learndrop.runs.store import RunStore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
CHARTS = ("heatmap", "score_lines", "active", "epoch_times", "flops", "loss_acc")
POINTS_JS = """(key) => {
    const el = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
    const trace = el && el._fullData && el._fullData[0];
    return trace && trace.x ? trace.x.length : 0 }"""
# records, in the page, the wall-clock time (ms) at which the epoch-time chart first shows n bars
WATCH_JS = """() => { window.__seen = {}; setInterval(() => {
    const n = (""" + POINTS_JS + """)('epoch_times');
    if (n && !(n in window.__seen)) window.__seen[n] = Date.now(); }, 20); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                            cwd=ROOT, env={**os.environ, "LEARNDROP_RUNS_DIR": str(runs)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


def tail_epochs(path: Path, written: dict[int, float], stop: threading.Event) -> None:
    """Wall-clock time (ms) at which each epoch_ended line appears in the run's events.jsonl."""
    offset = 0
    while not stop.is_set():
        if path.is_file():
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            now = time.time() * 1000
            for line in data[:end].splitlines():
                if b'"type":"epoch_ended"' in line:
                    written[len(written) + 1] = now
            offset += end
        time.sleep(0.005)


def epoch_latency(browser, url: str, runs: Path, epochs: int) -> list[float]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    page.get_by_role("button", name="Start", exact=True).wait_for(timeout=60_000)
    page.get_by_text("With a baseline").click()  # off: time the Learn&Drop run alone
    page.get_by_label("Epochs").fill(str(epochs))
    page.get_by_label("Epochs").press("Enter")
    time.sleep(1)
    written: dict[int, float] = {}
    stop = threading.Event()
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url("**/?run=*", timeout=30_000)
    page.evaluate(WATCH_JS)
    run_id = page.url.split("run=")[1]
    tail = threading.Thread(target=tail_epochs, args=(runs / run_id / "events.jsonl", written, stop), daemon=True)
    tail.start()
    page.wait_for_function(f"() => ({POINTS_JS})('epoch_times') >= {epochs}", timeout=600_000, polling=200)
    time.sleep(0.5)
    stop.set()
    seen = page.evaluate("() => window.__seen")
    page.close()
    return [seen[str(n)] - written[n] for n in sorted(written) if str(n) in seen]


def draw_time(browser, url: str, run_id: str, loads: int = 4) -> list[float]:
    """Seconds from navigation to all six charts drawn: first in a fresh browser (nothing cached), then
    reloads (the browser's cache warm, as for someone who keeps the dashboard open)."""
    out = []
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    for i in range(loads):
        start = time.perf_counter()
        if i == 0:
            page.goto(f"{url}/?run={run_id}")
        else:
            page.reload()
        page.wait_for_function(f"() => {list(CHARTS)}.every(k => ({POINTS_JS})(k) > 0)", timeout=120_000,
                               polling=20)
        out.append(time.perf_counter() - start)
    context.close()
    return out


def switch_time(browser, url: str, small: str, big: str, repeats: int = 3) -> list[float]:
    """Seconds from choosing the big run in the sidebar of an open dashboard to its six charts drawn."""
    out = []
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    for _ in range(repeats):
        page.goto(f"{url}/?run={small}")
        page.wait_for_function(f"() => {list(CHARTS)}.every(k => ({POINTS_JS})(k) > 0)", timeout=120_000)
        page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").click()
        option = page.get_by_role("option", name=big)
        start = time.perf_counter()
        option.click()
        page.wait_for_function("""() => { const el = document.querySelector('.st-key-heatmap .js-plotly-plot');
            return el && el._fullData && el._fullData[0] && el._fullData[0].y && el._fullData[0].y.length == 50 }""",
                               timeout=120_000, polling=10)
        page.wait_for_function(f"() => {list(CHARTS)}.every(k => ({POINTS_JS})(k) > 0)", timeout=120_000, polling=10)
        out.append(time.perf_counter() - start)
    page.close()
    return out


def script_time(runs: Path, run_id: str) -> tuple[float, float]:
    """The Train page's script run on the server (AppTest): first (figures built) and cached."""
    os.environ["LEARNDROP_RUNS_DIR"] = str(runs)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["run"] = run_id
    at.run()  # imports, registry
    at2 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at2.query_params["run"] = run_id
    t = time.perf_counter()
    at2.run()
    cold = time.perf_counter() - t
    t = time.perf_counter()
    at2.run()
    return cold, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the Quick demo to time (default 8)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result: dict = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        small = write_fake_run(RunStore(runs), units=6, epochs=8, checks_per_epoch=2)
        big = write_fake_run(RunStore(runs), units=50, epochs=100)
        proc, url = start_server(runs)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                warm_up = browser.new_page()
                warm_up.goto(url)  # the server's first script run imports torch; not part of a page's draw
                warm_up.get_by_role("button", name="Start", exact=True).wait_for(timeout=120_000)
                warm_up.close()
                draws = draw_time(browser, url, big)
                small_draws = draw_time(browser, url, small)  # the floor: the same page for a 6-unit, 8-epoch run
                switches = switch_time(browser, url, small, big)
                lat = epoch_latency(browser, url, runs, args.epochs)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(15)
        cold, warm = script_time(runs, big)
    result.update({
        "epoch_latency_s": [round(x / 1000, 3) for x in lat],
        "epoch_latency_median_s": round(statistics.median(lat) / 1000, 3) if lat else None,
        "epoch_latency_max_s": round(max(lat) / 1000, 3) if lat else None,
        "draw_100x50_fresh_browser_s": round(draws[0], 3),  # downloads the 23 MB frontend, builds the figures
        "draw_100x50_reload_s": [round(x, 3) for x in draws[1:]],
        "draw_6x8_reload_s": [round(x, 3) for x in small_draws[1:]],
        "switch_to_100x50_in_open_page_s": [round(x, 3) for x in switches],
        "script_100x50_first_s": round(cold, 3),
        "script_100x50_cached_s": round(warm, 3),
        "load_avg_end": os.getloadavg()[0],
    })
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
