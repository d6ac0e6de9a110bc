"""Installable: a wheel built from pyproject.toml holds the learndrop package only (not tests/, dashboard/,
pages/, benchmarks/), its metadata declares the dependencies and extras once, and the ``learndrop``
command is an entry point to learndrop.cli:main. Builds with pip (no dependencies, no build isolation:
offline, about 10-30 s); ``-m "not slow"`` leaves it out. That quick loop itself: the ``slow`` marker is
declared and leaves most of the suite in it."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
from helpers import ROOT

import learndrop


@pytest.mark.slow  # pip builds and installs the wheel in a subprocess
def test_pip_install_yields_the_package_its_metadata_and_a_learndrop_command(tmp_path):
    source = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("learndrop", "dashboard", "pages", "tests"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, timeout=120)

    installed = {p.name for p in target.iterdir()}
    assert "learndrop" in installed and not installed & {"tests", "dashboard", "pages", "benchmarks"}
    (dist,) = target.glob("learndrop-*.dist-info")
    assert dist.name == f"learndrop-{learndrop.__version__}.dist-info"  # the version, single-sourced
    points = configparser.ConfigParser()
    points.read(dist / "entry_points.txt")
    assert points["console_scripts"]["learndrop"] == "learndrop.cli:main"
    metadata = (dist / "METADATA").read_text()
    for requirement in ("torch", "torchvision", "numpy", "pillow", "pandas", "plotly", "tqdm",
                        'streamlit; extra == "dashboard"', 'pytest; extra == "tests"',
                        'tensorboard; extra == "tensorboard"', 'timm; extra == "timm"'):
        assert f"Requires-Dist: {requirement}\n" in metadata, requirement

    command = "import sys; from learndrop.cli import main; sys.exit(main(sys.argv[1:]))"  # what the script runs
    out = subprocess.run([sys.executable, "-c", command, "models"], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "tiny" in out.stdout and str(target) in subprocess.run(
        [sys.executable, "-c", "import learndrop; print(learndrop.__file__)"], cwd=tmp_path,
        env={"PYTHONPATH": str(target)}, capture_output=True, text=True, check=True).stdout


def test_requirements_keep_the_torch_pins_and_install_the_library_with_its_extras():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.strip()[:1] not in "#"]
    assert "torch==2.14.1" in lines and "torchvision==0.29.1" in lines
    editable = [ln for ln in lines if ln.startswith("-e .[")]
    assert len(editable) == 1, lines
    extras = set(editable[0].removeprefix("-e .[").removesuffix("]").split(","))
    assert extras == {"dashboard", "tests", "tensorboard", "pretrained", "lightning"}  # all the README promises


@pytest.mark.slow  # collects the whole suite in a subprocess
def test_not_slow_is_a_quick_loop_that_keeps_most_of_the_suite_and_leaves_out_processes_and_the_browser():
    """``pytest -m "not slow"``: the marker is declared (pytest only warns about an undeclared one), most tests
    stay in the quick loop, and the tests that start other processes or a browser are left out of it."""
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert any(m.startswith("slow: ") for m in ini["markers"]), ini["markers"]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", "not slow"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                         env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"})
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    counts = re.search(r"^(\d+)/(\d+) tests? collected \((\d+) deselected\)", out.stdout, re.MULTILINE)
    assert counts, out.stdout[-3000:]
    quick, total, slow = map(int, counts.groups())
    ids = out.stdout.split("\n\n")[0].splitlines()  # -q lists the selected tests first, one a line
    assert len(ids) == quick and all("::" in i for i in ids) and quick + slow == total
    assert slow >= 20 and quick >= 0.7 * total, (quick, slow)
    left_out = ("tests/test_browser.py::", "tests/test_own_loop.py::", "tests/test_packaging.py::test_pip_install",
                "tests/test_distributed.py::test_torchrun_trains", "tests/test_cli.py::test_default_demo")
    assert not [i for i in ids if i.startswith(left_out)]
