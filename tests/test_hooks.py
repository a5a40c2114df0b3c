"""Hooks: environment.py hooks reported as hook runs, and hook failures reported on the
tests they affect. Uses features/environment.py's `-D fail_hook=<hook>` and
`-D fail_cleanup=1` switches (features/README.md)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
from helpers import (
    BEHAVE_13,
    DEMO_ARGS,
    FEATURES,
    FORMATTER,
    REPO,
    VENV126_PYTHON,
    assert_delivery_clean,
    by_location,
    failure_text,
    reported_hooks,
    reported_tests,
    run_behave,
    server_env,
)

TARGET = "features/cart.feature:45"  # the one @hook_target scenario
TARGET_NAME = "Adding the same product twice adds up"
KNOWN_FAILURES = {
    "features/checkout.feature:40",
    "features/checkout.feature:47",
    "features/checkout.feature:54",
}
FEATURE_NAMES = {
    "features/cart.feature": "Shopping cart",
    "features/checkout.feature": "Checkout",
    "features/discounts.feature": "Discount codes",
    "features/rules.feature": "Loyalty points",
}
ENV_FILE = "features/environment.py"


def _hook_lines() -> dict[str, int]:
    """The `def` line of every hook in features/environment.py, read independently."""
    tree = ast.parse((FEATURES / "environment.py").read_text(encoding="utf-8"))
    return {node.name: node.lineno for node in tree.body if isinstance(node, ast.FunctionDef)}


HOOK_LINES = _hook_lines()


class Run:
    """One behave run of the demo suite and what the emulator received from it."""

    def __init__(
        self, server, cwd: Path, *switches: str, python=None, in_process=False, **env: str
    ) -> None:
        extra = [a for s in switches for a in ("-D", s)]
        args = ["-f", FORMATTER, "-f", "null", *extra]
        if python is None:
            args += DEMO_ARGS
        else:  # a behave 1.2.6 interpreter: no Rules there
            args += ["--exclude", "rules.feature", "features/"]
            env.setdefault("PYTHONPATH", str(REPO))
        self.rc, self.stdout, self.stderr = run_behave(
            args, cwd, server_env(server, cwd / "journal", **env), in_process, python
        )
        assert_delivery_clean(server)
        self.tests = by_location(reported_tests(server))
        self.hooks = reported_hooks(server)
        self.by_uuid = {t.uuid: loc for loc, t in self.tests.items()}

    def hooks_named(self, hook: str) -> list:
        return [h for h in self.hooks if h.start["hook_type"] == hook]

    def failed_hooks(self) -> list:
        return [h for h in self.hooks if h.finish["result"] == "failed"]

    def hooks_of_test(self, location: str) -> list:
        uuid = self.tests[location].uuid
        return [h for h in self.hooks if h.start.get("test_run_id") == uuid]

    def results(self) -> dict[str, str]:
        return {loc: t.finish["result"] for loc, t in self.tests.items()}


def assert_hook_failure(hook_run, hook: str, message: str | None = None) -> None:
    """A failed hook run whose backtrace has the exception first, then environment.py."""
    finish = hook_run.finish
    assert finish["result"] == "failed"
    assert finish["hook_type"] == hook_run.start["hook_type"] == hook
    backtrace = finish["failure"][0]["backtrace"]
    assert f"RuntimeError: {message or 'boom in ' + hook}" in backtrace[0], backtrace
    assert any(ENV_FILE in line for line in backtrace[1:]), backtrace
    assert hook_run.start["location"] == f"{ENV_FILE}:{HOOK_LINES[hook]}"


def assert_others_unchanged(run: Run, *affected: str) -> None:
    for location, result in run.results().items():
        if location in affected:
            continue
        expected = "failed" if location in KNOWN_FAILURES else "passed"
        assert result == expected, (location, run.tests[location].finish)


# -- every hook reported -----------------------------------------------------------------


def test_every_defined_hook_is_reported_as_a_hook_run(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop)
    assert run.rc == 1
    kinds = Counter(h.start["hook_type"] for h in run.hooks)
    n_features = 4 if BEHAVE_13 else 3
    assert kinds["before_all"] == kinds["after_all"] == 1
    assert kinds["before_feature"] == kinds["after_feature"] == n_features
    assert kinds["before_scenario"] == kinds["after_scenario"] == len(run.tests)
    assert kinds["before_tag"] == kinds["after_tag"] > 0
    if BEHAVE_13:
        assert kinds["before_rule"] == kinds["after_rule"] == 2
    assert kinds["before_step"] == kinds["after_step"] == 0  # default: failed ones only

    for hook in run.hooks:
        start, finish = hook.start, hook.finish
        kind = start["hook_type"]
        assert start["file_name"] == ENV_FILE
        assert start["location"] == f"{ENV_FILE}:{HOOK_LINES[kind]}"
        assert finish["result"] == "passed" and "failure" not in finish
        assert finish["duration_in_ms"] >= 1
        test = run.by_uuid.get(start.get("test_run_id"))
        if kind in ("before_scenario", "after_scenario"):
            assert test is not None, start
            assert run.tests[test].start["name"] in start["name"]
            assert hook.uuid in run.tests[test].finish["hooks"]
        elif kind.endswith(("_feature", "_all", "_rule")):
            assert "test_run_id" not in start, start
        if kind.endswith("_feature"):
            assert any(name in start["name"] for name in FEATURE_NAMES.values()), start


def test_hook_run_names_show_their_feature_and_scenario(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop)
    feature_hook_names = {h.start["name"] for h in run.hooks_named("before_feature")}
    for file_name, feature in FEATURE_NAMES.items():
        if BEHAVE_13 or "rules" not in file_name:
            assert any(feature in name for name in feature_hook_names), feature
    target_hooks = run.hooks_of_test(TARGET)
    assert {h.start["hook_type"] for h in target_hooks} >= {"before_scenario", "after_scenario"}
    assert all(TARGET_NAME in h.start["name"] for h in target_hooks)


# -- scenario-level failures -------------------------------------------------------------


@pytest.mark.parametrize("hook", ["before_scenario", "before_tag"])
def test_a_failing_before_hook_fails_its_test_and_skips_its_steps(
    tra_server, shop: Path, hook: str
) -> None:
    run = Run(tra_server, shop, f"fail_hook={hook}")
    (failed,) = run.failed_hooks()
    assert_hook_failure(failed, hook)
    assert failed.start["test_run_id"] == run.tests[TARGET].uuid
    assert TARGET_NAME in failed.start["name"]
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert failed.uuid in finish["hooks"]
    assert {s["result"] for s in finish["meta"]["steps"]} == {"skipped"}
    text = failure_text(finish)
    assert hook in text and f"boom in {hook}" in text
    assert_others_unchanged(run, TARGET)


def test_hooks_are_seen_when_behave_runs_in_process(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_hook=before_scenario", in_process=True)
    (failed,) = run.failed_hooks()
    assert_hook_failure(failed, "before_scenario")
    assert failed.start["test_run_id"] == run.tests[TARGET].uuid
    assert run.tests[TARGET].finish["result"] == "failed"
    assert len(run.hooks_named("before_scenario")) == len(run.tests)
    assert_others_unchanged(run, TARGET)


@pytest.mark.parametrize("hook", ["after_scenario", "after_tag"])
def test_a_failing_after_hook_fails_a_test_whose_steps_passed(
    tra_server, shop: Path, hook: str
) -> None:
    run = Run(tra_server, shop, f"fail_hook={hook}")
    (failed,) = run.failed_hooks()
    assert_hook_failure(failed, hook)
    assert failed.start["test_run_id"] == run.tests[TARGET].uuid
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert failed.uuid in finish["hooks"]
    assert {s["result"] for s in finish["meta"]["steps"]} == {"passed"}
    assert f"boom in {hook}" in failure_text(finish)
    assert_others_unchanged(run, TARGET)


def test_a_failing_cleanup_fails_a_test_whose_steps_passed(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_cleanup=1")
    assert run.failed_hooks() == []  # a cleanup is no hook
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert {s["result"] for s in finish["meta"]["steps"]} == {"passed"}
    text = failure_text(finish)
    assert "CLEANUP-ERROR" in text and "boom in cleanup" in text
    assert_others_unchanged(run, TARGET)


# -- step hooks --------------------------------------------------------------------------


@pytest.mark.parametrize("hook", ["before_step", "after_step"])
def test_a_failing_step_hook_is_reported_by_default(tra_server, shop: Path, hook: str) -> None:
    run = Run(tra_server, shop, f"fail_hook={hook}")
    step_hooks = run.hooks_named("before_step") + run.hooks_named("after_step")
    assert len(step_hooks) == 1, [h.start["name"] for h in step_hooks]  # only the failed one
    (failed,) = step_hooks
    assert_hook_failure(failed, hook)
    assert failed.start["test_run_id"] == run.tests[TARGET].uuid
    assert TARGET_NAME in failed.start["name"]
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert failed.uuid in finish["hooks"]
    first, *rest = finish["meta"]["steps"]
    assert first["result"] == "failed"
    assert hook in first["failure"] and f"boom in {hook}" in first["failure"]
    assert {s["result"] for s in rest} == {"skipped"}
    assert hook in failure_text(finish)
    assert_others_unchanged(run, TARGET)


def test_step_hooks_all_reports_every_step_hook(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, BSTACK_STEP_HOOKS="all")
    for location, test in run.tests.items():
        kinds = Counter(h.start["hook_type"] for h in run.hooks_of_test(location))
        # behave runs step hooks for every step it executes (an undefined one it does not)
        executed = [
            s
            for s in test.finish["meta"]["steps"]
            if s["result"] != "skipped" and "Undefined step" not in s.get("failure", "")
        ]
        assert kinds["before_step"] == kinds["after_step"] == len(executed), location
        assert len(test.finish["hooks"]) == sum(kinds.values())
    names = [h.start["name"] for h in run.hooks_named("before_step")]
    assert any(f"{TARGET_NAME} / Given the shop sells these products" in n for n in names)


def test_step_hooks_off_reports_no_step_hook_runs(tra_server, shop: Path) -> None:
    """docs/configuration.md: off reports no step hook run, not even a failed one; the
    step and its test still fail, naming the hook."""
    run = Run(tra_server, shop, "fail_hook=before_step", BSTACK_STEP_HOOKS="off")
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert "before_step" in finish["meta"]["steps"][0]["failure"]
    assert run.hooks_named("before_step") + run.hooks_named("after_step") == []


# -- container failures ------------------------------------------------------------------


def test_a_failing_before_feature_fails_every_scenario_naming_the_hook(
    tra_server, shop: Path
) -> None:
    run = Run(tra_server, shop, "fail_hook=before_feature")
    failed = run.failed_hooks()
    assert len(failed) == len(run.hooks_named("before_feature")) == (4 if BEHAVE_13 else 3)
    for hook in failed:
        assert_hook_failure(hook, "before_feature")
        assert "test_run_id" not in hook.start
    assert {h.start["name"] for h in failed} == {
        h.start["name"] for h in run.hooks_named("before_feature")
    }
    assert len(run.tests) == (18 if BEHAVE_13 else 15)
    for location, test in run.tests.items():
        finish = test.finish
        assert finish["result"] == "failed", location
        text = failure_text(finish)
        assert "before_feature" in text and "boom in before_feature" in text, location
        assert {s["result"] for s in finish["meta"]["steps"]} == {"skipped"}


def test_a_failing_before_all_is_reported_and_every_scenario_too(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_hook=before_all")
    assert run.rc == 1
    (failed,) = run.failed_hooks()
    assert_hook_failure(failed, "before_all")
    assert "test_run_id" not in failed.start
    assert len(run.tests) == (18 if BEHAVE_13 else 15)
    for location, test in run.tests.items():
        assert test.finish["result"] == "failed", location
        assert "before_all" in failure_text(test.finish)
    # assert_delivery_clean (in Run) checked that the build finished once, last


@pytest.mark.parametrize("hook", ["after_feature", "after_all"])
def test_a_failing_after_hook_of_a_container_is_reported(tra_server, shop: Path, hook: str) -> None:
    run = Run(tra_server, shop, f"fail_hook={hook}")
    failed = run.failed_hooks()
    assert failed and len(failed) == len(run.hooks_named(hook))
    for hook_run in failed:
        assert_hook_failure(hook_run, hook)
        assert "test_run_id" not in hook_run.start
    assert_others_unchanged(run)


@pytest.mark.skipif(not BEHAVE_13, reason="Rules need behave 1.3")
def test_a_failing_before_rule_fails_the_rules_scenarios(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_hook=before_rule")
    failed = run.failed_hooks()
    assert len(failed) == 2
    for hook in failed:
        assert_hook_failure(hook, "before_rule")
    in_rules = {loc for loc in run.tests if loc.startswith("features/rules.feature")}
    assert len(in_rules) == 3
    for location in in_rules:
        finish = run.tests[location].finish
        assert finish["result"] == "failed"
        assert "before_rule" in failure_text(finish)
    assert_others_unchanged(run, *in_rules)


# -- behave 1.2.6 ------------------------------------------------------------------------

needs_126 = pytest.mark.skipif(
    not VENV126_PYTHON.exists(), reason=f"no behave 1.2.6 interpreter at {VENV126_PYTHON}"
)


@needs_126
def test_behave_126_reports_hooks(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, python=VENV126_PYTHON)
    assert run.rc == 1
    assert len(run.tests) == 15
    kinds = Counter(h.start["hook_type"] for h in run.hooks)
    assert kinds["before_all"] == kinds["after_all"] == 1
    assert kinds["before_feature"] == 3
    assert kinds["before_scenario"] == kinds["after_scenario"] == 15
    for test in run.tests.values():
        linked = {h.uuid for h in run.hooks if h.start.get("test_run_id") == test.uuid}
        assert set(test.finish["hooks"]) == linked and len(linked) >= 2
    assert {loc for loc, r in run.results().items() if r == "failed"} == KNOWN_FAILURES


@needs_126
@pytest.mark.parametrize("hook", ["before_scenario", "before_step", "after_scenario"])
def test_behave_126_scenario_hook_failures(tra_server, shop: Path, hook: str) -> None:
    run = Run(tra_server, shop, f"fail_hook={hook}", python=VENV126_PYTHON)
    (failed,) = run.failed_hooks()
    assert_hook_failure(failed, hook)
    assert failed.start["test_run_id"] == run.tests[TARGET].uuid
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert f"boom in {hook}" in failure_text(finish)
    assert_others_unchanged(run, TARGET)


@needs_126
def test_behave_126_before_feature_failure(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_hook=before_feature", python=VENV126_PYTHON)
    assert len(run.failed_hooks()) == 3
    assert len(run.tests) == 15
    for test in run.tests.values():
        assert test.finish["result"] == "failed"
        assert "boom in before_feature" in failure_text(test.finish)


@needs_126
def test_behave_126_cleanup_failure_names_the_cleanup(tra_server, shop: Path) -> None:
    run = Run(tra_server, shop, "fail_cleanup=1", python=VENV126_PYTHON)
    finish = run.tests[TARGET].finish
    assert finish["result"] == "failed"
    assert {s["result"] for s in finish["meta"]["steps"]} == {"passed"}
    assert "boom in cleanup" in failure_text(finish)
