"""The same suite run from the project's top or from inside it reports the same tests.

Paths, default names and the journal's place are relative to the project root
(behave_bstack/project.py), not to the working directory.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import FORMATTER, clean_env, run_behave, server_env

from behave_bstack.emulator import TraServer
from behave_bstack.settings import project

FEATURE = """\
Feature: Calculator
  Background:
    Given a calculator

  Scenario: adds
    When I add 2 and 3
    Then the result is 5

  Scenario Outline: doubles <n>
    When I add <n> and <n>
    Then the result is <twice>

    Examples:
      | n | twice |
      | 1 | 2     |
"""

STEPS = """\
from behave import given, when, then


@given("a calculator")
def calc(context):
    context.total = 0


@when("I add {a:d} and {b:d}")
def add(context, a, b):
    context.total = a + b


@then("the result is {n:d}")
def result(context, n):
    assert context.total == n
"""

ENVIRONMENT = """\
def before_scenario(context, scenario):
    print("starting", scenario.name)
"""


def make_project(root: Path, marker: str | None) -> Path:
    files = {
        "features/calculator.feature": FEATURE,
        "features/steps/calc_steps.py": STEPS,
        "features/environment.py": ENVIRONMENT,
    }
    if marker:
        files[marker] = "[behave]\nshow_timings = false\n" if marker.endswith(".ini") else ""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def reported(server: TraServer) -> dict:
    (build,) = server.state.builds.values()
    tests = sorted(
        (t.start["name"], t.start["file_name"], t.start["location"], tuple(t.start["scopes"]))
        for t in server.state.tests_in(build.id)
    )
    hooks = sorted(
        (h.start["name"], h.start["file_name"], h.start["location"])
        for h in server.state.hooks_in(build.id)
    )
    return {
        "build": (build.start["name"], build.start["project_name"]),
        "tests": tests,
        "hooks": hooks,
    }


@pytest.mark.parametrize("marker", ["behave.ini", "pyproject.toml", None])
def test_top_and_features_directory_report_the_same(tmp_path, marker):
    root = make_project(tmp_path / "shop", marker)
    seen = []
    for cwd, args in ((root, ["features"]), (root / "features", [])):
        with TraServer(username="u", access_key="k") as server:
            env = server_env(server, tmp_path / "unused")
            del env["BSTACK_JOURNAL_DIR"]  # the default place, under the project root
            run = run_behave(["-f", FORMATTER, *args], cwd, env)
            assert run.returncode == 0, run.stdout + run.stderr
            seen.append(reported(server))
    top, inside = seen
    assert top == inside
    assert top["build"] == ("shop", "shop")
    assert (
        "adds",
        "features/calculator.feature",
        "features/calculator.feature:5",
        ("Calculator",),
    ) in top["tests"]
    assert all(h[1] == "features/environment.py" for h in top["hooks"])
    # One journal location: both runs under the project root, none inside features/.
    assert len(list((root / ".behave-bstack" / "journal").iterdir())) == 2
    assert not (root / "features" / ".behave-bstack").exists()


def test_the_command_finds_the_journal_from_inside_the_project(tmp_path):
    root = make_project(tmp_path / "shop", "behave.ini")
    run = run_behave(["-f", FORMATTER, "features"], root, {})
    assert run.returncode == 0, run.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "behave_bstack", "show", "latest"],
        cwd=root / "features",
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "features/calculator.feature" in shown.stdout or "adds" in shown.stdout


def test_project_root_rule(tmp_path):
    home = tmp_path / "home"
    (home / "proj" / "features" / "steps").mkdir(parents=True)
    (home / ".behaverc").write_text("", encoding="utf-8")  # behave's per-user file
    features = str(home / "proj" / "features")
    # No marker in the project: the features directory's parent, never the home directory.
    assert project.project_root(features, str(home)) == str(home / "proj")
    assert project.project_root(str(home / "proj"), str(home)) == str(home / "proj")
    # A marker above wins, from any depth.
    (home / "proj" / "setup.cfg").write_text("", encoding="utf-8")
    deep = home / "proj" / "features" / "steps"
    assert project.project_root(str(deep), str(home)) == str(home / "proj")
    # A git work tree's top counts as a marker too.
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "a" / "b").mkdir(parents=True)
    assert project.project_root(str(tmp_path / "repo" / "a" / "b"), str(home)) == str(
        tmp_path / "repo"
    )
    assert project.prefix_of(str(deep), str(home / "proj")) == "features/steps/"
    assert project.prefix_of(str(home / "proj"), str(home / "proj")) == ""
