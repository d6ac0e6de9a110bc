"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import two_conv_net

from learndrop.models import UnitNetwork
from learndrop.runs.store import RunStore


@pytest.fixture
def small_net() -> UnitNetwork:
    return two_conv_net()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``item.rep_call``), for fixtures that act on a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
