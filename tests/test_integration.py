"""Foundation: real behave runs of the demo suite (features/) against the TRA emulator.

Each run is compared with what behave itself says (its `-f json` output, its exit code and
its stdout), so the tests hold for behave 1.3.x and 1.2.6 alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import (
    BEHAVE_13,
    DEMO_ARGS,
    FORMATTER,
    REPO,
    assert_delivery_clean,
    behave_json_scenarios,
    by_location,
    failure_text,
    reported_hooks,
    reported_tests,
    run_behave,
    server_env,
    stderr_lines,
)

from behave_bstack.description import mapping

# The scenarios of features/ that fail on purpose (features/README.md), with what the
# failure must say first.
KNOWN_FAILURES = {
    "features/checkout.feature:40": "AssertionError: expected total 9.99, got 2.25",
    "features/checkout.feature:47": "OutOfStockError: only 2 x cheese in stock, 3 wanted",
    "features/checkout.feature:54": "When I pay with a gift voucher",
}
GREEN_TAGS = (
    ["--tags=not @known_failure and not @undefined_step"]
    if BEHAVE_13
    else ["--tags=-@known_failure", "--tags=-@undefined_step"]
)
EXPECTED_SCENARIOS = 18 if BEHAVE_13 else 15
_TIMINGS = re.compile(r"\d+(\.\d+)?s\b|Took .*")


def _same_stdout(text: str) -> str:
    """behave's stdout with its timings blanked (they differ from run to run)."""
    return _TIMINGS.sub("<t>", text)


def test_every_executed_scenario_is_reported_once_with_valid_payloads(
    tra_server, shop: Path
) -> None:
    json_out = shop / "behave.json"
    rc, out, err = run_behave(
        ["-f", "json", "-o", str(json_out), "-f", FORMATTER, *DEMO_ARGS],
        shop,
        server_env(tra_server, shop / "journal"),
    )
    assert rc == 1, out + err  # the scenarios that fail on purpose
    assert_delivery_clean(tra_server)

    behave_says = {s["location"]: s for s in behave_json_scenarios(json_out)}
    assert len(behave_says) == EXPECTED_SCENARIOS
    tests = by_location(reported_tests(tra_server))
    assert sorted(tests) == sorted(behave_says)

    for location, test in tests.items():
        start, finish = test.start, test.finish
        expected = behave_says[location]
        assert start["file_name"] == location.rsplit(":", 1)[0]
        assert start["body"]["lang"] == "gherkin"
        assert expected["name"].split(" -- @")[0] in start["name"]
        # meta.steps: every step behave had, background included, in order
        steps = finish["meta"]["steps"]
        assert [s["id"] for s in steps] == [str(i) for i in range(1, len(steps) + 1)]
        assert [(s["keyword"], s["text"].split("\n")[0]) for s in steps] == [
            (s["keyword"], s["name"]) for s in expected["steps"]
        ], location
        for mine, theirs in zip(steps, expected["steps"], strict=True):
            status = (theirs.get("result") or {}).get("status", "skipped")
            assert mine["result"] == mapping.step_result(status), (location, mine)
            if mine["result"] != "skipped":
                assert mine["started_at"] <= mine["finished_at"]
        wanted = "failed" if location in KNOWN_FAILURES else "passed"
        assert finish["result"] == wanted, (location, finish)
        assert finish["duration_in_ms"] >= 1
        assert (start["file_name"], start["scopes"]) == (finish["file_name"], finish["scopes"])


def test_failures_carry_the_exception_first(tra_server, shop: Path) -> None:
    run_behave(
        ["-f", FORMATTER, "-f", "null", *DEMO_ARGS],
        shop,
        server_env(tra_server, shop / "journal"),
    )
    tests = by_location(reported_tests(tra_server))
    for location, headline in KNOWN_FAILURES.items():
        finish = tests[location].finish
        assert finish["result"] == "failed"
        backtrace = finish["failure"][0]["backtrace"]
        # the exception (or the undefined step) within the first two lines, before any frame
        first = next(i for i, line in enumerate(backtrace) if headline in line)
        frames = [i for i, line in enumerate(backtrace) if line.strip().startswith("File ")]
        assert first <= 1, backtrace
        assert not frames or first < frames[0], backtrace
        failed_steps = [s for s in finish["meta"]["steps"] if s["result"] == "failed"]
        assert len(failed_steps) == 1 and failed_steps[0]["failure"]
        assert finish["meta"]["steps"][-1]["result"] == "skipped"
    # the step's own frames are there: the step file and line of the failing assert
    assert "shop_steps.py" in failure_text(tests["features/checkout.feature:40"].finish)
    # a passing test carries no failure at all
    assert "failure" not in tests["features/cart.feature:15"].finish


def test_scenario_hooks_are_linked_to_their_test(tra_server, shop: Path) -> None:
    run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, server_env(tra_server, shop / "journal"))
    tests = reported_tests(tra_server)
    hooks = reported_hooks(tra_server)
    for test in tests:
        linked = {h.uuid for h in hooks if h.start.get("test_run_id") == test.uuid}
        kinds = sorted(h.start["hook_type"] for h in hooks if h.uuid in linked)
        assert set(test.finish.get("hooks", ())) == linked
        assert kinds.count("before_scenario") == kinds.count("after_scenario") == 1, kinds


def test_exit_code_and_stdout_are_behaves_own(tra_server, shop: Path) -> None:
    env = server_env(tra_server, shop / "journal")
    plain = run_behave(["-f", "plain", *DEMO_ARGS], shop, env)
    both = run_behave(["-f", "plain", "-f", FORMATTER, *DEMO_ARGS], shop, env)
    null = run_behave(["-f", "null", *DEMO_ARGS], shop, env)
    alone = run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, env)
    assert plain.returncode == both.returncode == null.returncode == alone.returncode == 1
    assert _same_stdout(both.stdout) == _same_stdout(plain.stdout)
    assert _same_stdout(alone.stdout) == _same_stdout(null.stdout)

    green = [*GREEN_TAGS, *DEMO_ARGS]
    assert run_behave(["-f", "null", *green], shop, env).returncode == 0
    green_run = run_behave(["-f", FORMATTER, *green], shop, env)
    assert green_run.returncode == 0, green_run.stderr


def _executed(json_out: Path) -> set[str]:
    """Locations of the scenarios behave ran (some step has a result in its json)."""
    return {
        s["location"]
        for s in behave_json_scenarios(json_out)
        if any(
            (step.get("result") or {}).get("status") not in (None, "skipped") for step in s["steps"]
        )
    }


@pytest.mark.parametrize(
    "selection", [["--tags=@cart"], ["-n", "discount code"]], ids=["tags", "name"]
)
def test_only_the_scenarios_behave_selected_are_reported(
    tra_server, shop: Path, selection: list[str]
) -> None:
    json_out = shop / "behave.json"
    rc, out, err = run_behave(
        ["-f", "json", "-o", str(json_out), "-f", FORMATTER, *selection, *DEMO_ARGS],
        shop,
        server_env(tra_server, shop / "journal"),
    )
    assert rc == 0, out + err
    assert_delivery_clean(tra_server)
    executed = _executed(json_out)
    assert 0 < len(executed) < EXPECTED_SCENARIOS
    tests = by_location(reported_tests(tra_server))
    assert set(tests) == executed
    assert {t.finish["result"] for t in tests.values()} == {"passed"}


def test_report_excluded_adds_the_unselected_ones_as_skipped(tra_server, shop: Path) -> None:
    env = server_env(tra_server, shop / "journal", BSTACK_REPORT_EXCLUDED="1")
    json_out = shop / "behave.json"
    run_behave(
        ["-f", "json", "-o", str(json_out), "-f", FORMATTER, "--tags=@cart", *DEMO_ARGS], shop, env
    )
    assert_delivery_clean(tra_server)
    executed = _executed(json_out)
    tests = by_location(reported_tests(tra_server))
    assert len(tests) == EXPECTED_SCENARIOS
    for location, test in tests.items():
        if location in executed:
            assert test.finish["result"] == "passed"
        else:
            assert test.finish["result"] == "skipped", location
            assert "failure" not in test.finish
            assert {s["result"] for s in test.finish["meta"]["steps"]} == {"skipped"}


def test_stop_reports_the_scenarios_it_never_ran_as_skipped(tra_server, shop: Path) -> None:
    json_out = shop / "behave.json"
    rc, _, _ = run_behave(
        ["-f", "json", "-o", str(json_out), "-f", FORMATTER, "--stop", *DEMO_ARGS],
        shop,
        server_env(tra_server, shop / "journal"),
    )
    assert rc == 1
    assert_delivery_clean(tra_server)
    executed = _executed(json_out)
    tests = by_location(reported_tests(tra_server))
    assert len(tests) == EXPECTED_SCENARIOS  # everything behave selected, once
    assert len(executed) < EXPECTED_SCENARIOS
    failed = {loc for loc, t in tests.items() if t.finish["result"] == "failed"}
    assert failed == {"features/checkout.feature:40"}  # the first failure stops the run
    for location in set(tests) - executed:
        assert tests[location].finish["result"] == "skipped", location


def test_without_credentials_one_line_and_a_journal(shop: Path) -> None:
    journal = shop / "journal"
    null = run_behave(["-f", "null", *DEMO_ARGS], shop, {})
    rc, out, err = run_behave(
        ["-f", FORMATTER, *DEMO_ARGS], shop, {"BSTACK_JOURNAL_DIR": str(journal)}
    )
    assert rc == null.returncode
    assert _same_stdout(out) == _same_stdout(null.stdout)
    ours = stderr_lines(err)
    assert len(ours) == 1, err
    assert "behave-bstack upload" in ours[0]
    assert f"{EXPECTED_SCENARIOS} tests" in ours[0]
    assert any(journal.iterdir()), "nothing journaled"
    assert str(journal) in ours[0]


def test_dry_run_sends_nothing(tra_server, shop: Path) -> None:
    env = server_env(tra_server, shop / "journal")
    null = run_behave(["--dry-run", "-f", "null", *DEMO_ARGS], shop, env)
    rc, out, err = run_behave(["--dry-run", "-f", FORMATTER, *DEMO_ARGS], shop, env)
    assert rc == null.returncode
    assert tra_server.calls == []
    ours = stderr_lines(err)
    assert len(ours) == 1 and "dry-run" in ours[0], err


def test_in_process_runs_report_like_subprocess_runs(tra_server, shop: Path) -> None:
    """behave run inside this process (as behavex workers do), twice in a row."""
    env = server_env(tra_server, shop / "journal")
    for round_ in (1, 2):
        tra_server.reset()
        rc, out, err = run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, env, in_process=True)
        assert rc == 1, (round_, out, err)
        assert_delivery_clean(tra_server)
        tests = by_location(reported_tests(tra_server))
        assert len(tests) == EXPECTED_SCENARIOS, round_
        failed = {loc for loc, t in tests.items() if t.finish["result"] == "failed"}
        assert failed == set(KNOWN_FAILURES), round_


def test_the_bstack_alias_of_this_repository(tra_server, tmp_path: Path) -> None:
    """`-f bstack` works in the repository thanks to its setup.cfg alias."""
    env = server_env(tra_server, tmp_path / "journal", PYTHONDONTWRITEBYTECODE="1")
    rc, out, err = run_behave(["-f", "bstack", "features/discounts.feature"], REPO, env)
    assert rc == 0, out + err
    assert_delivery_clean(tra_server)
    tests = reported_tests(tra_server)
    assert len(tests) == 5
    assert {t.start["vc_filepath"] for t in tests} == {"features/discounts.feature"}
