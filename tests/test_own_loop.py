"""examples/own_loop.py, a plain PyTorch loop made Learn&Drop by a handful of lines, runs offline as is."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow  # the example trains in a subprocess


def test_the_own_loop_example_drops_units_and_reports_the_flops_saved():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "own_loop.py"), "--subset", "1000", "--epochs", "6",
                          "--tau", "1", "--kappa", "1e9"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert " dropped: change " in out.stdout, out.stdout  # a drop and its reason
    assert "FLOPs saved: " in out.stdout and "% forward" in out.stdout
    assert "dropped 0 of" not in out.stdout
