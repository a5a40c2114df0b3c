"""What behave actually ran, whatever the suite does at run time (real behave runs).

Each test builds a small suite of the kind real projects have (behave's own self-tests
run behave inside a step; fixtures switch a Background off; hooks skip scenarios or add
steps; scenario_autoretry runs a scenario again) and checks what the local server got.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import (
    BEHAVE_13,
    FORMATTER,
    assert_delivery_clean,
    only_build,
    reported_tests,
    run_behave,
    server_env,
)

from behave_bstack.emulator import TraServer


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def steps_of(test) -> list[tuple[str, str, str]]:
    return [(s["keyword"], s["text"], s["result"]) for s in test.finish["meta"]["steps"]]


def by_name(server: TraServer) -> dict[str, list]:
    found: dict[str, list] = {}
    for test in reported_tests(server):
        found.setdefault(test.start["name"], []).append(test)
    return found


# -- 1. a behave run inside a step ----------------------------------------------------------

INNER_FEATURE = """\
Feature: inner
  Scenario: inner one
    Given inner step passes
  Scenario: inner two
    Given inner step passes
  Scenario: inner three
    Given inner step passes
"""

OUTER_STEPS = """\
import os
from behave import given, when, then


@given("inner step passes")
def inner_step(context):
    pass


@given("the outer step passes")
def outer_step(context):
    pass


@when("a behave model runs inside this step")
def model_run(context):
    # How behave's own self-test suites do it (behave_model_util.run_model_with_cmdline).
    from behave.configuration import Configuration
    from behave.parser import parse_feature
    from behave.runner import ModelRunner

    feature = parse_feature(INNER, filename="inner.feature")
    config = Configuration([], load_config=False, default_format="null")
    failed = ModelRunner(config, [feature]).run()
    assert not failed, "the inner run failed"
    context.inner = [s.status.name for s in feature.scenarios]


@when("a behave run with its own reporter runs inside this step")
def full_run(context):
    from behave.configuration import Configuration
    from behave.runner import Runner

    inner = os.path.join(os.getcwd(), "inner_suite")
    config = Configuration(
        [inner, "-f", "behave_bstack:BstackFormatter", "-f", "null"], load_config=False
    )
    failed = Runner(config).run()
    assert not failed, "the inner run failed"
    context.inner = ["ran"]


@then("the inner run passed")
def inner_passed(context):
    assert context.inner
"""

OUTER_FEATURE = """\
Feature: outer
  Background:
    Given the outer step passes

  Scenario: runs behave inside
    When {when}
    Then the inner run passed

  Scenario: plain
    Given the outer step passes
"""


def outer_suite(root: Path, when: str) -> Path:
    steps = OUTER_STEPS.replace("parse_feature(INNER,", f"parse_feature({INNER_FEATURE!r},")
    return write(
        root,
        {
            "features/outer.feature": OUTER_FEATURE.format(when=when),
            "features/steps/steps.py": steps,
            "inner_suite/inner.feature": INNER_FEATURE,
            "inner_suite/steps/inner_steps.py": "# steps come from the outer run's registry\n",
        },
    )


def assert_outer_exact(tests: list, when: str) -> None:
    assert [t.start["name"] for t in tests] == ["runs behave inside", "plain"]
    inside, plain = tests
    assert inside.finish["result"] == "passed" and plain.finish["result"] == "passed"
    assert steps_of(inside) == [
        ("Given", "the outer step passes", "passed"),
        ("When", when, "passed"),
        ("Then", "the inner run passed", "passed"),
    ]
    assert steps_of(plain) == [
        ("Given", "the outer step passes", "passed"),
        ("Given", "the outer step passes", "passed"),
    ]


@pytest.mark.parametrize("in_process", [False, True], ids=["subprocess", "in-process"])
def test_a_behave_model_run_inside_a_step_is_not_reported(tmp_path, tra_server, in_process):
    when = "a behave model runs inside this step"
    root = outer_suite(tmp_path, when)
    env = server_env(tra_server, tmp_path / "journal")
    run = run_behave(["-f", FORMATTER, "features"], root, env, in_process=in_process)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_delivery_clean(tra_server)
    tests = reported_tests(tra_server)
    assert not [t for t in tests if t.start["name"].startswith("inner")]
    assert_outer_exact(tests, when)


def test_a_behave_run_with_its_own_reporter_inside_a_step_is_its_own_build(tmp_path, tra_server):
    when = "a behave run with its own reporter runs inside this step"
    root = outer_suite(tmp_path, when)
    env = server_env(tra_server, tmp_path / "journal", BROWSERSTACK_BUILD_NAME="b")
    run = run_behave(["-f", FORMATTER, "features"], root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    builds = list(tra_server.state.builds.values())
    assert len(builds) == 2
    # Two uploaders deliver at once: tell the builds by what they hold, not by order.
    names = {b.id: {t.start["name"] for t in tra_server.state.tests_in(b.id)} for b in builds}
    outer, inner = sorted(builds, key=lambda b: "plain" not in names[b.id])
    inner_tests = tra_server.state.tests_in(inner.id)
    assert sorted(t.start["name"] for t in inner_tests) == ["inner one", "inner three", "inner two"]
    assert all(t.finish["result"] == "passed" and t.finish_count == 1 for t in inner_tests)
    assert_outer_exact(tra_server.state.tests_in(outer.id), when)
    assert outer.finish_count == 1 and inner.finish_count == 1
    assert not [c for c in tra_server.calls if c.status != 200]


# -- 2. the model behave ran, not a fresh parse ---------------------------------------------

RUNTIME_STEPS = """\
import time
from behave import given, when, then


@given("a background step")
def background_step(context):
    context.background_ran = True


@given("a rule background step")
def rule_background_step(context):
    pass


@when("I do {what}")
def do(context, what):
    pass


@then("it works")
def works(context):
    pass


@when("a step runs other steps")
def runs_steps(context):
    context.execute_steps("When I do nested work\\nThen it works")
    time.sleep(0.2)


@then("the added step passes")
def added(context):
    pass
"""

RUNTIME_ENV = """\
from behave.model import Step


def before_step(context, step):
    pass


def after_step(context, step):
    pass


def before_rule(context, rule):
    if "no_inheritance" in rule.tags:
        rule.background.use_inheritance = False   # behave's own fixture does this


def before_tag(context, tag):
    if tag == "no_background":
        context.scenario.use_background = False   # fixture.behave.no_background


def before_scenario(context, scenario):
    if "skip_me" in scenario.tags:
        scenario.skip("skipped by a hook")
    if "add_step" in scenario.tags:
        scenario.steps.append(
            Step(scenario.filename, 999, "And", "then", "the added step passes")
        )
    if "retag" in scenario.tags:
        scenario.tags.append("added_at_run_time")
"""

RUNTIME_FEATURE = """\
Feature: run-time model
  Background:
    Given a background step

  Scenario: as written
    When I do things
    Then it works

  @no_background
  Scenario: without the background
    When I do other things
    Then it works

  @skip_me
  Scenario: skipped by a hook
    When I do things

  @add_step
  Scenario: with a step added
    When I do things

  @retag
  Scenario: retagged
    When I do things

  Scenario: nested steps
    When a step runs other steps
    Then it works
"""

RULES_FEATURE = """\
Feature: rules at run time
  Background:
    Given a background step

  @no_inheritance
  Rule: without the feature background
    Background:
      Given a rule background step

    Scenario: in the rule
      When I do rule things

  Rule: with it
    Background:
      Given a rule background step

    Scenario: inheriting
      When I do rule things
"""


def test_meta_steps_are_the_steps_behave_ran_when_hooks_change_the_model(tmp_path, tra_server):
    files = {
        "features/runtime.feature": RUNTIME_FEATURE,
        "features/steps/steps.py": RUNTIME_STEPS,
        "features/environment.py": RUNTIME_ENV,
    }
    if BEHAVE_13:
        files["features/rules.feature"] = RULES_FEATURE
    else:  # behave 1.2.6 has neither Rules nor use_background
        files["features/runtime.feature"] = RUNTIME_FEATURE.replace(
            "  @no_background\n  Scenario: without the background\n"
            "    When I do other things\n    Then it works\n\n",
            "",
        )
    root = write(tmp_path, files)
    env = server_env(tra_server, tmp_path / "journal")
    run = run_behave(["-f", FORMATTER, "features"], root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_delivery_clean(tra_server)
    tests = {name: runs[0] for name, runs in by_name(tra_server).items()}
    bg = ("Given", "a background step", "passed")
    assert steps_of(tests["as written"]) == [
        bg,
        ("When", "I do things", "passed"),
        ("Then", "it works", "passed"),
    ]
    assert steps_of(tests["skipped by a hook"]) == [
        ("Given", "a background step", "skipped"),
        ("When", "I do things", "skipped"),
    ]
    assert tests["skipped by a hook"].finish["result"] == "skipped"
    assert steps_of(tests["with a step added"]) == [
        bg,
        ("When", "I do things", "passed"),
        ("And", "the added step passes", "passed"),
    ]
    retagged = tests["retagged"]
    assert "added_at_run_time" not in retagged.start["tags"]  # identity: the file's tags
    assert "retag" in retagged.start["tags"]
    nested = tests["nested steps"]
    assert steps_of(nested) == [
        bg,
        ("When", "a step runs other steps", "passed"),
        ("Then", "it works", "passed"),
    ]
    # The step hooks of the steps it ran inside did not cut its time short.
    assert nested.finish["meta"]["steps"][1]["duration"] >= 190
    if BEHAVE_13:
        assert steps_of(tests["without the background"]) == [
            ("When", "I do other things", "passed"),
            ("Then", "it works", "passed"),
        ]
        assert steps_of(tests["in the rule"]) == [
            ("Given", "a rule background step", "passed"),
            ("When", "I do rule things", "passed"),
        ]
        assert steps_of(tests["inheriting"]) == [
            bg,
            ("Given", "a rule background step", "passed"),
            ("When", "I do rule things", "passed"),
        ]
    # Every test's body and location stay the file's.
    for test in tests.values():
        assert test.start["body"]["code"].strip()
        assert test.start["file_name"].startswith("features/")


# -- 3. names exactly as behave has them ----------------------------------------------------

SPACED_FEATURE = """\
Feature: spacing
  Scenario: -   'age' --  twice   spaced
    Given a background step

  Scenario: - 'age' -- twice spaced
    Given a background step

  Scenario Outline: row  <n>   here
    Given a background step

    Examples:  two  spaces
      | n |
      | 1 |
"""


def test_names_keep_their_inner_spacing(tmp_path, tra_server):
    root = write(
        tmp_path,
        {"features/spacing.feature": SPACED_FEATURE, "features/steps/steps.py": RUNTIME_STEPS},
    )
    env = server_env(tra_server, tmp_path / "journal")
    run = run_behave(["-f", "json", "-o", "out.json", "-f", FORMATTER, "features"], root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    names = [t.start["name"] for t in reported_tests(tra_server)]
    import json

    behave_names = [
        e["name"]
        for f in json.loads((root / "out.json").read_text(encoding="utf-8"))
        for e in f["elements"]
    ]
    assert names == [n.strip() for n in behave_names]
    assert names[0] == "-   'age' --  twice   spaced" and names[1] == "- 'age' -- twice spaced"
    assert "row  1   here" in names[2]


# -- 4. scenarios skipped before their steps were shown ----------------------------------------

SKIPPING_FEATURE = """\
Feature: skipping with show_skipped off
  Background:
    Given a background step

  Scenario: runs
    When I do things

  @skip_me
  Scenario: skipped by a hook
    When I do things
    Then it works

  @excluded
  Scenario: excluded by tags
    When I do things
"""


def test_no_skipped_reports_hook_skipped_scenarios_and_leaves_excluded_out(tmp_path, tra_server):
    root = write(
        tmp_path,
        {
            "features/skipping.feature": SKIPPING_FEATURE,
            "features/steps/steps.py": RUNTIME_STEPS,
            "features/environment.py": RUNTIME_ENV,
        },
    )
    env = server_env(tra_server, tmp_path / "journal")
    tags = "not @excluded" if BEHAVE_13 else "~@excluded"
    run = run_behave(["-f", FORMATTER, "--no-skipped", "--tags", tags, "features"], root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_delivery_clean(tra_server)
    tests = {name: runs[0] for name, runs in by_name(tra_server).items()}
    assert sorted(tests) == ["runs", "skipped by a hook"]
    skipped = tests["skipped by a hook"]
    assert skipped.finish["result"] == "skipped"
    assert steps_of(skipped) == [
        ("Given", "a background step", "skipped"),
        ("When", "I do things", "skipped"),
        ("Then", "it works", "skipped"),
    ]


# -- 6. retries in the same run -------------------------------------------------------------

RETRY_ENV = """\
from behave.contrib.scenario_autoretry import patch_scenario_with_autoretry


def before_feature(context, feature):
    for scenario in feature.walk_scenarios():
        if "autoretry" in scenario.effective_tags:
            patch_scenario_with_autoretry(scenario, max_attempts=3)
"""

RETRY_STEPS = """\
from behave import given

ATTEMPTS = {}


@given("it passes on attempt {n:d}")
def passes_on(context, n):
    key = context.scenario.name
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    assert ATTEMPTS[key] >= n, f"attempt {ATTEMPTS[key]} fails"
"""

RETRY_FEATURE = """\
Feature: flaky
  @autoretry
  Scenario: flaky one
    Given it passes on attempt 2

  @autoretry
  Scenario: always broken
    Given it passes on attempt 9

  Scenario: steady
    Given it passes on attempt 1
"""


def test_autoretry_attempts_are_runs_of_the_same_test(tmp_path, tra_server):
    root = write(
        tmp_path,
        {
            "features/flaky.feature": RETRY_FEATURE,
            "features/steps/steps.py": RETRY_STEPS,
            "features/environment.py": RETRY_ENV,
        },
    )
    env = server_env(tra_server, tmp_path / "journal")
    run = run_behave(["-f", FORMATTER, "features"], root, env)
    null = run_behave(["-f", "null", "features"], root, {})
    assert run.returncode == null.returncode == 1
    assert_delivery_clean(tra_server)
    runs = by_name(tra_server)
    flaky = runs["flaky one"]
    assert [t.finish["result"] for t in flaky] == ["failed", "passed"]
    broken = runs["always broken"]
    assert [t.finish["result"] for t in broken] == ["failed", "failed", "failed"]
    assert [t.finish["result"] for t in runs["steady"]] == ["passed"]
    for attempts in (flaky, broken):
        identities = {
            (t.start["location"], t.start["file_name"], tuple(t.start["scopes"])) for t in attempts
        }
        assert len(identities) == 1  # one test in TRA, several runs of it
        assert all(len(t.finish["meta"]["steps"]) == 1 for t in attempts)
    assert "attempt 1 fails" in flaky[0].finish["failure"][0]["backtrace"][0]
    assert only_build(tra_server).finish_count == 1
