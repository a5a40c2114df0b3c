"""mapping.py on its own (statuses, exceptions, step text, paths), and a real behave run
whose step code mocks the clock the way freezegun does."""

from __future__ import annotations

import datetime as dt
import enum
import os
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import BEHAVE_13, FORMATTER, reported_tests, run_behave, server_env

from behave_bstack.description import mapping

# Every status name behave 1.2.6 and 1.3.x use, with the result the mapping table in
# mapping.py's docstring gives it: (test result, step result).
EXPECTED_RESULTS = {
    "passed": ("passed", "passed"),
    "failed": ("failed", "failed"),
    "error": ("failed", "failed"),
    "hook_error": ("failed", "failed"),
    "cleanup_error": ("failed", "failed"),
    "undefined": ("failed", "failed"),
    "pending": ("failed", "failed"),
    "executing": ("failed", "failed"),
    "unknown": ("failed", "failed"),
    "skipped": ("skipped", "skipped"),
    "untested": ("skipped", "skipped"),
    "untested_pending": ("skipped", "skipped"),
    "untested_undefined": ("skipped", "skipped"),
    "pending_warn": ("passed", "skipped"),
    "xfailed": ("passed", "passed"),
    "xpassed": ("failed", "failed"),
}


# -- statuses ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_RESULTS))
def test_every_status_name_maps_as_the_table_says(name: str) -> None:
    test_expected, step_expected = EXPECTED_RESULTS[name]
    assert mapping.test_result(name) == test_expected
    assert mapping.step_result(name) == step_expected


@pytest.mark.parametrize("name", sorted(EXPECTED_RESULTS))
def test_enum_members_map_like_their_names(name: str) -> None:
    status = enum.Enum("Status", [name])[name]  # duck-typed like behave's Status
    assert mapping.status_name(status) == name
    assert (mapping.test_result(status), mapping.step_result(status)) == EXPECTED_RESULTS[name]


def test_installed_behave_has_no_status_missing_from_the_table() -> None:
    try:
        from behave.model_type import Status  # 1.3
    except ImportError:  # 1.2.6
        from behave.model_core import Status
    names = {s.name for s in Status}
    assert names <= set(EXPECTED_RESULTS), names - set(EXPECTED_RESULTS)
    for status in Status:
        assert mapping.test_result(status) == EXPECTED_RESULTS[status.name][0]


@pytest.mark.parametrize("status", ["flaky", "", None, "PASSED", "timeout"])
def test_an_unknown_status_is_failed_never_passed(status) -> None:
    assert mapping.test_result(status) == "failed"
    assert mapping.step_result(status) == "failed"


# -- exceptions ------------------------------------------------------------------------------


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ itself fails")


def _raise_and_catch(exc: BaseException) -> BaseException:
    def inner_user_function() -> None:
        raise exc

    try:
        inner_user_function()
    except BaseException as caught:  # noqa: B036 - any exception is fine here
        return caught
    raise AssertionError("not raised")


def test_describe_exception_survives_a_str_that_raises() -> None:
    lines = mapping.describe_exception(_raise_and_catch(_UnprintableError()))
    assert lines[0].startswith("_UnprintableError")
    assert "__str__ itself fails" not in "\n".join(lines)
    assert any("inner_user_function" in line for line in lines[1:])


def test_describe_exception_puts_type_and_message_first_then_frames() -> None:
    lines = mapping.describe_exception(_raise_and_catch(ValueError("bad value\nsecond line")))
    assert lines[:2] == ["ValueError: bad value", "second line"]
    assert any(line.strip().startswith("File ") for line in lines[2:])
    assert any("raise exc" in line for line in lines)


def test_describe_exception_without_message_or_traceback() -> None:
    assert mapping.describe_exception(KeyboardInterrupt()) == ["KeyboardInterrupt"]
    assert mapping.describe_exception(None) == []


def test_describe_exception_hides_the_reporters_own_frames() -> None:
    """A hook raises through our wrapper (hookwatch/tracker); users must see their frames,
    not ours."""
    from behave_bstack.recording import hookwatch

    def user_hook(context) -> None:
        raise RuntimeError("boom in user hook")

    wrapped = hookwatch._wrap("before_all", user_hook, lambda name, func, args, run: run())
    try:
        wrapped(object())
    except RuntimeError as exc:
        lines = mapping.describe_exception(exc)
    assert lines[0] == "RuntimeError: boom in user hook"
    assert any("user_hook" in line for line in lines)
    assert not any(os.sep + "behave_bstack" + os.sep in line for line in lines[1:]), lines


# -- step text ---------------------------------------------------------------------------


def _parse_steps(gherkin: str) -> list:
    from behave.parser import parse_feature

    feature = parse_feature(textwrap.dedent(gherkin), filename="x.feature")
    return list(feature.scenarios[0].steps)


def test_step_text_with_a_table_and_with_a_doc_string() -> None:
    table_step, text_step, plain_step = _parse_steps(
        '''
        Feature: F
          Scenario: S
            Given these rows
              | name  | qty |
              | apple | 10  |
              | fig   | 2   |
            When I send
              """
              line one
                indented line
              """
            Then nothing else
        '''
    )
    assert mapping.step_text(table_step) == (
        "these rows\n  | name  | qty |\n  | apple | 10  |\n  | fig   | 2   |"
    )
    assert mapping.step_text(text_step) == 'I send\n  """\n  line one\n    indented line\n  """'
    assert mapping.step_text(plain_step) == "nothing else"


def test_step_text_escapes_what_gherkin_escapes() -> None:
    """A pipe in a cell must not read as a cell border, nor a triple quote in a doc string
    as its end: the text has to stay valid Gherkin for the same step."""
    row = SimpleNamespace(cells=["a | b", "c \\ d"])
    table_step = SimpleNamespace(
        name="cells", table=SimpleNamespace(headings=["value", "back"], rows=[row]), text=None
    )
    assert mapping.step_text(table_step).split("\n") == [
        "cells",
        r"  | value  | back   |",
        r"  | a \| b | c \\ d |",
    ]
    text_step = SimpleNamespace(name="I send", table=None, text='say """ twice\n\u2028 end')
    assert mapping.step_text(text_step).split("\n") == [
        "I send",
        '  """',
        '  say \\"\\"\\" twice',
        "  \u2028 end",
        '  """',
    ]


# -- names, scopes, tags -----------------------------------------------------------------


def test_repeated_scenario_names_become_unique_and_stable() -> None:
    from behave.parser import parse_feature

    from behave_bstack.recording.payloads import Payloads

    source = """\
Feature: Repeats
  Scenario: Same
    Given a step
  Scenario: Same
    Given a step
  Scenario: Same #2
    Given a step
  Scenario:   Same
    Given a step
"""
    names = []
    for _ in range(2):  # the same file gives the same names
        feature = parse_feature(source, filename="r.feature")
        payloads = Payloads("/tmp")
        payloads.index_feature(feature)
        names.append([payloads.name_of(s) for s in feature.scenarios])
    assert names[0] == names[1]
    assert names[0][:2] == ["Same", "Same #2"]
    assert len(set(names[0])) == 4, names[0]


def test_scopes_fall_back_to_the_file_name_for_a_nameless_feature() -> None:
    feature = SimpleNamespace(name="  ", tags=[])
    scenario = SimpleNamespace(parent=feature, tags=["x"])
    assert mapping.scopes_of(scenario, feature, "features/login.feature") == ["login"]
    assert mapping.tags_of(scenario, feature) == ["x"]


@pytest.mark.skipif(not BEHAVE_13, reason="Rules need behave 1.3")
def test_scopes_and_tags_of_a_scenario_in_a_rule() -> None:
    from behave.parser import parse_feature

    feature = parse_feature(
        textwrap.dedent(
            """\
            @f
            Feature: Shop
              @r
              Rule: Members
                @s @f
                Scenario: Earn
                  Given a step
            """
        ),
        filename="s.feature",
    )
    (scenario,) = list(feature.walk_scenarios())
    assert mapping.scopes_of(scenario, feature, "s.feature") == ["Shop", "Members"]
    assert mapping.tags_of(scenario, feature) == ["f", "r", "s"]


# -- paths -------------------------------------------------------------------------------


def test_relative_path(tmp_path: Path) -> None:
    cwd = str(tmp_path)
    assert mapping.relative_path("features/a.feature", cwd) == "features/a.feature"
    assert mapping.relative_path(str(tmp_path / "f" / "b.feature"), cwd) == "f/b.feature"
    assert mapping.relative_path("./f/../g/c.feature", cwd) == "g/c.feature"
    outside = os.path.abspath(os.path.join(cwd, "..", "elsewhere.feature"))
    assert mapping.relative_path("../elsewhere.feature", cwd) == outside.replace(os.sep, "/")
    assert "\\" not in mapping.relative_path(os.path.join("a", "b.feature"), cwd)


# -- a suite that mocks the clock -----------------------------------------------------------

FROZEN_FEATURE = """\
Feature: Code under test mocks the clock

  Scenario: Frozen by a step, given back by a cleanup
    Given the clock is frozen until the scenario ends
    When a little real time passes
    Then the clock still says 1970

  Scenario: Frozen across the end of a scenario
    Given the clock is frozen for good
    When a little real time passes
    Then the clock still says 1970

  Scenario: The clock is given back
    Given the clock is restored
    Then the clock says this year
"""

FROZEN_STEPS = """\
import datetime
import time

from behave import step

REAL = {"time": time.time, "time_ns": time.time_ns, "monotonic": time.monotonic,
        "monotonic_ns": time.monotonic_ns, "perf_counter": time.perf_counter,
        "datetime": datetime.datetime}


class FrozenDateTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(1970, 1, 1, tzinfo=tz)

    @classmethod
    def utcnow(cls):
        return cls(1970, 1, 1)


def freeze():
    # what freezegun does: module attributes replaced by frozen stand-ins
    time.time = lambda: 0.0
    time.time_ns = lambda: 0
    time.monotonic = lambda: 0.0
    time.monotonic_ns = lambda: 0
    time.perf_counter = lambda: 0.0
    datetime.datetime = FrozenDateTime


def restore():
    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"):
        setattr(time, name, REAL[name])
    datetime.datetime = REAL["datetime"]


@step("the clock is frozen until the scenario ends")
def frozen_with_cleanup(context):
    freeze()
    context.add_cleanup(restore)


@step("the clock is frozen for good")
def frozen_for_good(context):
    freeze()


@step("a little real time passes")
def real_time_passes(context):
    time.sleep(0.003)


@step("the clock still says 1970")
def still_frozen(context):
    assert time.time() == 0.0
    assert datetime.datetime.now().year == 1970


@step("the clock is restored")
def restored(context):
    restore()


@step("the clock says this year")
def this_year(context):
    assert datetime.datetime.now().year > 2000
"""


def _epoch(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def test_timestamps_stay_real_when_step_code_mocks_time(tra_server, tmp_path: Path) -> None:
    steps_dir = tmp_path / "features" / "steps"
    steps_dir.mkdir(parents=True)
    (tmp_path / "features" / "frozen.feature").write_text(FROZEN_FEATURE, encoding="utf-8")
    (steps_dir / "clock_steps.py").write_text(FROZEN_STEPS, encoding="utf-8")
    before = time.time()
    rc, out, err = run_behave(
        ["-f", FORMATTER, "-f", "plain", "features/"],
        tmp_path,
        server_env(tra_server, tmp_path / "journal"),
    )
    after = time.time()
    assert rc == 0, out + err
    tests = reported_tests(tra_server)
    assert len(tests) == 3
    stamps = []
    for test in tests:
        assert test.finish["result"] == "passed"
        stamps += [test.start["started_at"], test.finish["finished_at"]]
        assert test.finish["duration_in_ms"] >= 1
        assert _epoch(test.finish["finished_at"]) >= _epoch(test.start["started_at"])
        for step in test.finish["meta"]["steps"]:
            stamps += [step["started_at"], step["finished_at"]]
            assert step["duration"] >= 0
            assert _epoch(step["finished_at"]) >= _epoch(step["started_at"])
    build = next(iter(tra_server.state.builds.values()))
    stamps += [build.start["started_at"], build.finishes[0]["finished_at"]]
    for stamp in stamps:
        assert before - 60 <= _epoch(stamp) <= after + 60, stamp
    slept = [
        s
        for t in tests
        for s in t.finish["meta"]["steps"]
        if s["text"] == "a little real time passes"
    ]
    assert len(slept) == 2 and all(s["duration"] >= 2 for s in slept), slept


@pytest.mark.parametrize(
    "cwd, repo, raw, expected",
    [
        ("/r", "/r", "features/a.feature", ("features/a.feature", "features/a.feature")),
        ("/r", "/r", "./features/a.feature", ("features/a.feature", "features/a.feature")),
        ("/r", "/r", "../other/b.feature", ("/other/b.feature", None)),
        ("/r/sub", "/r", "features/a.feature", ("features/a.feature", "sub/features/a.feature")),
        ("/r/sub", "/r", "../other/b.feature", ("/r/other/b.feature", "other/b.feature")),
        ("/r/sub", "/r", "/r/sub/c.feature", ("c.feature", "sub/c.feature")),
        ("/x", "/r", "features/a.feature", ("features/a.feature", None)),
        ("/r", None, "features/a.feature", ("features/a.feature", None)),
    ],
)
def test_file_name_and_repository_path_of_a_feature(cwd, repo, raw, expected) -> None:
    """The shortcut for clean relative paths gives what the general computation gives."""
    from behave_bstack.recording.payloads import Payloads

    class Node:
        filename = raw

    assert Payloads(cwd, repo).paths_of(Node()) == expected
