"""A bug inside behave-bstack must never reach behave: every callback is guarded, the run
goes on exactly as without the reporter, and the summary says what went wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DEMO_ARGS, FORMATTER, reported_tests, run_behave, server_env

from behave_bstack.recording import payloads, tracker


@pytest.mark.parametrize(
    "target, method",
    [
        (payloads.Payloads, "test_finish"),
        (payloads.Payloads, "plain_pass"),
        (payloads.Payloads, "step_item"),
        (tracker.Tracker, "scenario_entered"),
        (tracker.Tracker, "scenario_left"),
        (tracker.Tracker, "scenario_announced"),
        (tracker.Tracker, "step_finished"),
        (tracker.Tracker, "hook_begin"),
    ],
)
def test_an_internal_error_changes_nothing_for_behave(
    tra_server, shop: Path, monkeypatch, target, method
) -> None:
    baseline = run_behave(
        ["-f", "plain", "--no-timings", "--no-summary", *DEMO_ARGS], shop, in_process=True
    )

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in behave-bstack")

    monkeypatch.setattr(target, method, broken)
    env = server_env(tra_server, shop / "journal")
    run = run_behave(
        ["-f", "plain", "--no-timings", "--no-summary", "-f", FORMATTER, *DEMO_ARGS],
        shop,
        env,
        in_process=True,
    )
    assert run.returncode == baseline.returncode == 1
    assert run.stdout == baseline.stdout  # every scenario ran, reported by behave as usual
    assert "internal error (please report): RuntimeError: a bug in behave-bstack" in run.stderr
    # What could still be reported was: every test at least started.
    assert len(reported_tests(tra_server)) >= 15
