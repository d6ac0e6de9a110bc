"""Fixtures shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from helpers import two_conv_net

from learndrop.models import UnitNetwork
from learndrop.runs.store import RUNS_DIR_ENV, RunStore


@pytest.fixture
def small_net() -> UnitNetwork:
    return two_conv_net()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture
def runs(tmp_path: Path, monkeypatch) -> RunStore:
    """A fresh runs folder, and a fresh registry for it; live runs are stopped afterwards."""
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "runs"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield RunStore(tmp_path / "runs")
    from dashboard import state  # the app's registry of this runs folder

    registry = state.registry()
    for run_id in registry.live_run_ids():
        registry.stop(run_id)
    for run_id in registry.run_ids():
        registry.wait(run_id, 60)
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``item.rep_call``), for fixtures that act on a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
