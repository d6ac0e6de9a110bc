"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import two_conv_net

from learndrop.models import UnitNetwork
from learndrop.runs import RunStore


@pytest.fixture
def small_net() -> UnitNetwork:
    return two_conv_net()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")
