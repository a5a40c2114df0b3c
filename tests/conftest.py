"""Shared fixtures: a fresh TRA emulator, behave runners, a private copy of the demo suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so test modules import helpers
sys.path.append(str(Path(__file__).resolve().parent / "simplatform"))  # tests use its parts

# BSTACK_SIMULATE_PLATFORM=windows|bare: this process, and every Python process the tests
# start (behave, its uploader, behave-bstack), run on the simulated platform of
# tests/simplatform/simplatform.py.  Installed before the package is imported.
if os.environ.get("BSTACK_SIMULATE_PLATFORM"):
    _SIMPLATFORM = str(Path(__file__).resolve().parent / "simplatform")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_SIMPLATFORM, os.environ.get("PYTHONPATH")) if p
    )
    import simplatform

    simplatform.install_from_env(keep_ids=True)  # (the tests' tools use os.getuid)

from behave_bstack.emulator.server import TraServer  # noqa: E402

pytest.register_assert_rewrite("helpers")  # detailed messages from its assert_* helpers

import helpers  # noqa: E402


@pytest.fixture
def tra_server() -> Iterator[TraServer]:
    """A started emulator on an ephemeral loopback port, fresh for each test."""
    with TraServer(username="bs_user", access_key="bs_key") as server:
        yield server


@pytest.fixture
def run_behave() -> Callable[..., helpers.BehaveRun]:
    """run_behave(args, cwd, env_extra=None, in_process=False) -> (rc, stdout, stderr)."""
    return helpers.run_behave


@pytest.fixture
def copy_features() -> Callable[[Path], Path]:
    """copy_features(tmp_path) copies features/ to tmp_path/features and returns tmp_path."""
    return helpers.copy_features


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The demo suite copied into tmp_path (the cwd to run behave in)."""
    return helpers.copy_features(tmp_path)


@pytest.fixture
def reporting_env(tra_server: TraServer, tmp_path: Path) -> dict[str, str]:
    """Environment that makes a run report to tra_server, journaling in tmp_path."""
    return helpers.server_env(tra_server, tmp_path / "journal")
