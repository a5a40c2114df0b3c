"""Bad input through a real behave run: every payload that reaches the server passes its
validation (the local server answers 422 otherwise), nothing crashes, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import helpers
from helpers import FORMATTER, reported_tests, server_env

LONG_TAG = "t" * 300
LONG_NAME = "N" * 10_000

FEATURE = f"""
@{LONG_TAG} {" ".join(f"@tag{i}" for i in range(500))}
Feature: Hostile {"S" * 300} ‮ RTL ‭ 😀

  Scenario: {LONG_NAME}
    Given a step with a huge doc string:
      \"\"\"
      {"x" * 3_000_000}
      \"\"\"

  Scenario: Unicode everywhere 😀 ‮ مرحبا
    Given a step that prints binary garbage
    And a step that raises an exception whose str() raises

  Scenario: A traceback of 100,000 lines
    Given a step that fails with a 100000-line message

  Scenario: A very long step text
    Given a step {"w" * 10_000}
"""

STEPS = r"""
import sys
from behave import given

class Nasty(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")

@given("a step with a huge doc string")
def _doc(context):
    assert len(context.text) > 1_000_000

@given("a step that prints binary garbage")
def _garbage(context):
    sys.stdout.write(bytes(range(256)).decode("latin-1") + "\ud800 lone surrogate \x00 NUL\n")
    print("\x1b[31mred\x1b[0m", "\u202e reversed")

@given("a step that raises an exception whose str() raises")
def _nasty(context):
    raise Nasty()

@given("a step that fails with a {n:d}-line message")
def _long(context, n):
    raise AssertionError("\n".join(f"line {i}" for i in range(n)))

@given("a step {text}")
def _any(context, text):
    pass
"""


def test_hostile_input_is_repaired_and_delivered(tra_server, tmp_path: Path):
    (tmp_path / "features" / "steps").mkdir(parents=True)
    (tmp_path / "features" / "hostile.feature").write_text(FEATURE, encoding="utf-8")
    (tmp_path / "features" / "steps" / "steps.py").write_text(STEPS, encoding="utf-8")
    env = server_env(tra_server, tmp_path / "journal", BSTACK_FLUSH_TIMEOUT="60")
    null = helpers.run_behave(
        ["-f", "null", "features"], tmp_path, server_env(tra_server, tmp_path / "j0")
    )
    run = helpers.run_behave(["-f", FORMATTER, "features"], tmp_path, env, timeout=180)
    assert run.returncode == null.returncode == 1
    refused = [c for c in tra_server.state.calls if c.status >= 400]
    assert refused == [], [(c.op, c.status) for c in refused]
    tests = {t.start["name"]: t for t in reported_tests(tra_server)}
    assert len(tests) == 4
    assert all(t.finish_count == 1 for t in tests.values())
    long_test = next(t for name, t in tests.items() if name.startswith("NNNN"))
    assert len(long_test.start["name"]) <= 500 and "truncated" in long_test.start["name"]
    assert len(long_test.start["tags"]) == 50
    failed = {name: t.finish for name, t in tests.items() if t.finish["result"] == "failed"}
    assert len(failed) == 2
    backtraces = [line for f in failed.values() for e in f["failure"] for line in e["backtrace"]]
    assert any("Nasty" in line for line in backtraces)
    assert any("lines omitted" in line or "truncated" in line for line in backtraces)
    logs = [log.entry["message"] for log in tra_server.state.logs]
    assert any("lone surrogate" in m for m in logs)
    assert not any("\x00" in m or "\x1b[" in m for m in logs)
