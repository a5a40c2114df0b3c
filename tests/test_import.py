"""`behave-bstack import`: reports of other runs, journaled and delivered to the emulator.

behave's `-f json` of a real run of features/ must report what `-f bstack` reported live
on that same run; every Cucumber Compatibility Kit sample (Messages recorded from real
runs) is imported and checked against the sample itself (read here with plain json, not
with the importer's code); importing again sends nothing twice.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import helpers
import pytest

from behave_bstack.command.main import main
from behave_bstack.emulator import TraServer

CCK = pytest.importorskip("cucumber_compatibility_kit")
SAMPLES = sorted(
    p for p in (Path(CCK.__file__).parent / "features").iterdir() if list(p.glob("*.ndjson"))
)


def run_cli(args, cwd: Path, env: dict, stdin: bytes | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = helpers.clean_env(env)
    if stdin is not None:
        import sys

        saved = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            code = main(args, stdout=out, stderr=err, environ=environ, cwd=str(cwd))
        finally:
            sys.stdin = saved
    else:
        code = main(args, stdout=out, stderr=err, environ=environ, cwd=str(cwd))
    return code, out.getvalue(), err.getvalue()


def _view(server: TraServer) -> dict:
    """What matters of each test run, by location (a retry adds to a list)."""
    found: dict = {}
    for run in helpers.reported_tests(server):
        start, finish = run.start, run.finish
        found[start["location"]] = {
            "name": start["name"],
            "file_name": start["file_name"],
            "scopes": start["scopes"],
            "tags": start.get("tags"),
            "result": finish["result"],
            "steps": [(s["keyword"], s["text"], s["result"]) for s in finish["meta"]["steps"]],
        }
    return found


# -- behave's own -f json ---------------------------------------------------------------


def test_behave_json_of_a_run_reports_what_the_live_run_reported(shop: Path, tmp_path: Path):
    with (
        TraServer(username="u", access_key="k") as live,
        TraServer(username="u", access_key="k") as imported,
    ):
        env = helpers.server_env(live, tmp_path / "live-journal")
        args = ["-f", "json", "-o", "run.json", "-f", helpers.FORMATTER, *helpers.DEMO_ARGS]
        result = helpers.run_behave(args, shop, env)
        assert result.returncode == 1  # features/ fails three scenarios on purpose
        env = helpers.server_env(imported, tmp_path / "import-journal")
        code, _, err = run_cli(["import", "run.json"], shop, env)
        assert code == 0, err
        helpers.assert_delivery_clean(imported)
        expected, got = _view(live), _view(imported)
        assert len(expected) == 18 if helpers.BEHAVE_13 else len(expected) > 10
        assert got == expected
        assert "reported 18 tests of 18" in err or not helpers.BEHAVE_13

        # The same file again: the journal is found, nothing is sent twice.
        calls = len(imported.calls)
        code, _, err = run_cli(["import", "run.json"], shop, env)
        assert code == 0, err
        assert "imported before" in err and "nothing to send" in err
        assert len(imported.calls) == calls


def test_an_import_made_offline_is_sent_by_upload_once(shop: Path, tmp_path: Path, tra_server):
    result = helpers.run_behave(["-f", "json", "-o", "run.json", *helpers.DEMO_ARGS], shop)
    assert result.returncode == 1
    journal_dir = tmp_path / "journal"
    code, _, err = run_cli(["import", "run.json"], shop, {"BSTACK_JOURNAL_DIR": str(journal_dir)})
    assert code == 1 and "nothing sent: no BrowserStack credentials" in err
    assert not tra_server.calls
    env = helpers.server_env(tra_server, journal_dir)
    code, out, err = run_cli(["upload"], shop, env)
    assert code == 0, out + err
    helpers.assert_delivery_clean(tra_server)
    calls = len(tra_server.calls)
    code, _, err = run_cli(["import", "run.json"], shop, env)
    assert code == 0 and "nothing to send" in err
    assert len(tra_server.calls) == calls


def test_stdin_and_format_errors(shop: Path, tmp_path: Path, tra_server):
    helpers.run_behave(["-f", "json", "-o", "run.json", *helpers.DEMO_ARGS], shop)
    env = helpers.server_env(tra_server, tmp_path / "journal")
    data = (shop / "run.json").read_bytes()
    code, _, err = run_cli(["import", "-"], shop, env, stdin=data)
    assert code == 0, err
    assert len(helpers.reported_tests(tra_server)) > 10
    assert not list((tmp_path / "journal").glob(".stdin-*"))  # the copy is removed

    code, _, err = run_cli(["import", "--format", "messages", "run.json"], shop, env)
    assert code == 2
    assert err.strip() == (
        "behave-bstack: run.json: this is a behave JSON report, not Cucumber Messages "
        "(give --format behave-json, or leave --format out)"
    )
    (shop / "notes.txt").write_text("hello\n")
    code, _, err = run_cli(["import", "notes.txt"], shop, env)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not a report this command reads" in err
    code, _, err = run_cli(["import", "missing.json"], shop, env)
    assert code == 2 and "missing.json: no such file" in err


# -- Cucumber Messages: the Compatibility Kit ------------------------------------------------


def _sample_messages(path: Path) -> list[tuple[str, dict]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            ((key, value),) = json.loads(line).items()
            found.append((key, value))
    return found


SEVERITY = {"PASSED": "passed", "SKIPPED": "skipped"}  # any other status fails a test


def _expected(messages: list[tuple[str, dict]]) -> dict:
    """From the sample alone: per test case attempt (in order) its result, its number of
    steps and of hooks run; the global hooks; the attachments."""
    cases = {v["id"]: v for k, v in messages if k == "testCase"}
    pickles = {v["id"]: v for k, v in messages if k == "pickle"}
    started = {}
    order = []
    for key, value in messages:
        if key == "testCaseStarted":
            started[value["id"]] = {"case": cases[value["testCaseId"]], "done": {}}
            order.append(value["id"])
        elif key == "testStepFinished":
            status = value["testStepResult"]["status"]
            started[value["testCaseStartedId"]]["done"][value["testStepId"]] = status
    tests = []
    for started_id in order:
        item = started[started_id]
        statuses = list(item["done"].values())
        results = {SEVERITY.get(s, "failed") for s in statuses}
        result = (
            "failed" if "failed" in results else "skipped" if "skipped" in results else "passed"
        )
        steps = item["case"]["testSteps"]
        pickle = pickles[item["case"]["pickleId"]]
        hooks = [s for s in steps if "hookId" in s and s["id"] in item["done"]]
        tests.append((pickle["name"], result, len(pickle["steps"]), len(hooks)))
    return {
        "tests": tests,
        "global_hooks": sum(1 for k, _ in messages if k == "testRunHookStarted"),
        "attachments": sum(1 for k, _ in messages if k in ("attachment", "externalAttachment")),
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_cck_sample_is_imported_as_it_ran(sample: Path, tmp_path: Path, tra_server):
    ndjson = next(sample.glob("*.ndjson"))
    env = helpers.server_env(tra_server, tmp_path / "journal")
    code, _, err = run_cli(["import", str(ndjson)], tmp_path, env)
    expected = _expected(_sample_messages(ndjson))
    assert not helpers.refused_calls(tra_server), err  # the emulator validated every call
    helpers.assert_delivery_clean(tra_server)
    assert code == 0, err
    tests = sorted(helpers.reported_tests(tra_server), key=lambda r: (r.start["started_at"], r.seq))
    got = []
    for run in tests:
        name = run.start["name"].split(" #")[0]
        linked = [
            h for h in helpers.reported_hooks(tra_server) if h.start.get("test_run_id") == run.uuid
        ]
        assert sorted(run.finish.get("hooks", [])) == sorted(h.uuid for h in linked)
        got.append((name, run.finish["result"], len(run.finish["meta"]["steps"]), len(linked)))
    assert got == expected["tests"]
    build_hooks = [h for h in helpers.reported_hooks(tra_server) if "test_run_id" not in h.start]
    assert len(build_hooks) == expected["global_hooks"]
    build = helpers.only_build(tra_server)
    assert len(tra_server.state.logs_in(build.id)) == expected["attachments"]


def test_cck_details_steps_hooks_attachments_retries(tmp_path: Path, tra_server):
    """A few samples looked at closely: what a user sees in TRA."""
    base = Path(CCK.__file__).parent / "features"
    env = helpers.server_env(tra_server, tmp_path / "journal")
    for name in ("data-tables", "retry", "attachments", "hooks-named", "global-hooks", "rules"):
        code, _, err = run_cli(["import", str(base / name / f"{name}.ndjson")], tmp_path, env)
        assert code in (0, 1), err
    assert not helpers.refused_calls(tra_server)
    tests = list(tra_server.state.tests.values())
    by_name: dict = {}
    for run in tests:
        by_name.setdefault(run.start["name"], []).append(run)
    (data_table,) = [r for r in tests if r.start["file_name"].endswith("data-tables.feature")]
    step = data_table.finish["meta"]["steps"][0]
    assert step["keyword"] == "When"
    assert step["text"].startswith("the following table is transposed:\n  | a | b |")
    assert data_table.start["body"]["code"].startswith(
        "  Scenario: transposed table\n    When the following table is transposed:\n"
    )
    # retry: one test, three attempts, the last passed; same identity for each attempt
    retried = by_name["Test cases that fail will continue to retry up to the --retry limit"]
    assert [r.finish["result"] for r in retried] == ["failed", "failed", "passed"]
    assert len({(r.start["location"], tuple(r.start["scopes"])) for r in retried}) == 1
    # attachments: a log, a screenshot-less binary attachment, with the bytes' size
    logs = [entry.entry for entry in tra_server.state.logs]
    assert any(e["kind"] == "TEST_LOG" and e["message"] == "hello" for e in logs)
    pdf = [e for e in logs if e.get("file_name") == "renamed.pdf"]
    assert pdf and pdf[0]["kind"] == "TEST_ATTACHMENT" and pdf[0]["file_size"] > 1000
    # named hooks and global hooks
    hook_names = {h.start["name"] for h in tra_server.state.hooks.values()}
    assert any(n.startswith("A named before hook: ") for n in hook_names)
    types = {h.start["hook_type"] for h in tra_server.state.hooks.values()}
    assert {"beforeEach", "afterEach", "beforeAll", "afterAll"} <= types
    # rules: scopes [feature, rule]
    ruled = [r for r in tests if r.start["file_name"].endswith("rules.feature")]
    assert {tuple(r.start["scopes"]) for r in ruled} == {
        ("Usage of a `Rule`", "A sale cannot happen if the customer does not have enough money"),
        ("Usage of a `Rule`", "a sale cannot happen if there is no stock"),
    }


def test_a_malformed_line_is_named_and_skipped(tmp_path: Path, tra_server):
    sample = Path(CCK.__file__).parent / "features" / "minimal" / "minimal.ndjson"
    lines = sample.read_text(encoding="utf-8").splitlines()
    lines.insert(3, '{"pickle": {"broken": ')
    report = tmp_path / "broken.ndjson"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = helpers.server_env(tra_server, tmp_path / "journal")
    code, _, err = run_cli(["import", str(report)], tmp_path, env)
    assert code == 0, err
    assert f"{report}: line 4: not a Cucumber message" in err and "skipped" in err
    assert len(helpers.reported_tests(tra_server)) == 1


def test_a_stream_cut_inside_a_test_case_reports_it_failed_with_what_it_did(
    tmp_path: Path, tra_server
):
    """The runner was killed: its report ends after the test case's step finished, before
    the test case did.  The test run is failed (never lost, never passed), with its step."""
    sample = Path(CCK.__file__).parent / "features" / "minimal" / "minimal.ndjson"
    lines = sample.read_text(encoding="utf-8").splitlines()
    kinds = [next(iter(json.loads(line))) for line in lines]
    cut = tmp_path / "cut.ndjson"
    cut.write_text("\n".join(lines[: kinds.index("testCaseFinished")]) + "\n", encoding="utf-8")
    env = helpers.server_env(tra_server, tmp_path / "journal")
    code, _, err = run_cli(["import", str(cut)], tmp_path, env)
    assert code == 0, err
    assert not helpers.refused_calls(tra_server)
    (run,) = helpers.reported_tests(tra_server)
    assert run.finish["result"] == "failed"
    assert [s["result"] for s in run.finish["meta"]["steps"]] == ["passed"]
    assert "the report ends before this test case finished" in json.dumps(run.finish["failure"])


# -- Cucumber JSON ----------------------------------------------------------------------------

PYTEST_BDD_FEATURE = """\
@shop
Feature: Shop
  Background:
    Given a cart

  Scenario: Adding
    When I add 2 apples
    Then the cart holds 2 apples

  Scenario: Failing
    When I add 1 apples
    Then the cart holds 5 apples

  Scenario Outline: Many
    When I add <n> apples
    Then the cart holds <n> apples

    Examples:
      | n |
      | 1 |
      | 3 |
"""
PYTEST_BDD_STEPS = """\
from pytest_bdd import scenarios, given, when, then, parsers
scenarios("features/shop.feature")

@given("a cart", target_fixture="cart")
def cart():
    return []

@when(parsers.parse("I add {n:d} apples"))
def add(cart, n):
    cart.extend(["apple"] * n)

@then(parsers.parse("the cart holds {n:d} apples"))
def holds(cart, n):
    assert len(cart) == n
"""


def test_cucumber_json_written_by_pytest_bdd(tmp_path: Path, tra_server):
    pytest.importorskip("pytest_bdd")
    import subprocess
    import sys

    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "shop.feature").write_text(PYTEST_BDD_FEATURE)
    (tmp_path / "test_shop.py").write_text(PYTEST_BDD_STEPS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cucumberjson=out.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=helpers.clean_env(),
    )
    assert run.returncode == 1, run.stdout  # the scenario "Failing" fails
    env = helpers.server_env(tra_server, tmp_path / "journal")
    code, _, err = run_cli(["import", "out.json"], tmp_path, env)
    assert code == 0, err
    helpers.assert_delivery_clean(tra_server)
    tests = {r.start["name"]: r for r in helpers.reported_tests(tra_server)}
    assert sorted(tests) == ["Adding", "Failing", "Many", "Many #2"]
    assert {n: r.finish["result"] for n, r in tests.items()} == {
        "Adding": "passed",
        "Failing": "failed",
        "Many": "passed",
        "Many #2": "passed",
    }
    adding = tests["Adding"]
    assert adding.start["file_name"] == "features/shop.feature"
    assert adding.start["location"] == "features/shop.feature:6"
    assert adding.start["scopes"] == ["Shop"] and adding.start["tags"] == ["shop"]
    steps = [(s["keyword"], s["text"], s["result"]) for s in adding.finish["meta"]["steps"]]
    assert steps == [
        ("Given", "a cart", "passed"),
        ("When", "I add 2 apples", "passed"),
        ("Then", "the cart holds 2 apples", "passed"),
    ]
    failure = helpers.failure_text(tests["Failing"].finish)
    assert "AssertionError: assert 1 == 5" in failure
    assert failure.endswith("Failed step: Then the cart holds 5 apples")
    assert [s["text"] for s in tests["Many #2"].finish["meta"]["steps"]][1] == "I add 3 apples"


def test_cucumber_json_of_the_jvm_shape(tmp_path: Path, tra_server):
    """Backgrounds apart, "@" tags, before/after hooks, embeddings, output, doc strings,
    data tables, start_timestamp and nanosecond durations (cucumber-jvm's json plugin)."""
    png = base64.b64encode(b"\x89PNG fake").decode()
    report = [
        {
            "uri": "file:" + str(tmp_path / "src/test/resources/cart.feature"),
            "id": "cart",
            "keyword": "Feature",
            "name": "Cart",
            "line": 1,
            "tags": [{"name": "@cart", "line": 1}],
            "elements": [
                {
                    "type": "background",
                    "keyword": "Background",
                    "name": "",
                    "line": 3,
                    "steps": [
                        {
                            "keyword": "Given ",
                            "name": "a shop",
                            "line": 4,
                            "result": {"status": "passed", "duration": 2_000_000},
                        }
                    ],
                },
                {
                    "type": "scenario",
                    "keyword": "Scenario",
                    "name": "Doc and table",
                    "id": "cart;doc-and-table",
                    "line": 6,
                    "start_timestamp": "2024-05-01T10:00:00.000Z",
                    "tags": [{"name": "@cart"}, {"name": "@slow"}],
                    "before": [
                        {
                            "match": {"location": "steps.Hooks.open()"},
                            "result": {"status": "passed", "duration": 5_000_000},
                        }
                    ],
                    "steps": [
                        {
                            "keyword": "When ",
                            "name": "I send",
                            "line": 7,
                            "doc_string": {"value": "hello\nworld", "line": 8},
                            "result": {"status": "passed", "duration": 3_000_000},
                            "output": ["a line of output"],
                        },
                        {
                            "keyword": "Then ",
                            "name": "the table is",
                            "line": 11,
                            "rows": [{"cells": ["a", "b"]}, {"cells": ["1", "2"]}],
                            "result": {"status": "undefined"},
                        },
                    ],
                    "after": [
                        {
                            "match": {"location": "steps.Hooks.shot(Scenario)"},
                            "result": {
                                "status": "failed",
                                "duration": 1_000_000,
                                "error_message": "java.lang.IllegalStateException: no driver",
                            },
                            "embeddings": [{"mime_type": "image/png", "data": png}],
                        }
                    ],
                },
            ],
        }
    ]
    path = tmp_path / "cucumber.json"
    path.write_text(json.dumps(report))
    env = helpers.server_env(tra_server, tmp_path / "journal")
    code, _, err = run_cli(["import", str(path)], tmp_path, env)
    assert code == 0, err
    helpers.assert_delivery_clean(tra_server)
    (test,) = helpers.reported_tests(tra_server)
    assert test.start["file_name"] == "src/test/resources/cart.feature"
    assert test.start["tags"] == ["cart", "slow"]
    assert test.start["started_at"] == "2024-05-01T10:00:00.000Z"
    assert test.finish["result"] == "failed"
    steps = test.finish["meta"]["steps"]
    assert [(s["keyword"], s["result"]) for s in steps] == [
        ("Given", "passed"),
        ("When", "passed"),
        ("Then", "failed"),
    ]
    assert steps[1]["text"] == 'I send\n  """\n  hello\n  world\n  """'
    assert steps[1]["started_at"] == "2024-05-01T10:00:00.007Z"  # after the hook and Given
    assert steps[2]["text"] == "the table is\n  | a | b |\n  | 1 | 2 |"
    hooks = sorted(helpers.reported_hooks(tra_server), key=lambda h: h.start["started_at"])
    assert [(h.start["hook_type"], h.finish["result"]) for h in hooks] == [
        ("beforeEach", "passed"),
        ("afterEach", "failed"),
    ]
    assert all(h.start["test_run_id"] == test.uuid for h in hooks)
    logs = [r.entry for r in tra_server.state.logs]
    kinds = sorted((e["kind"], "test_run_uuid" in e) for e in logs)
    assert kinds == [("TEST_LOG", True), ("TEST_SCREENSHOT", False)]
