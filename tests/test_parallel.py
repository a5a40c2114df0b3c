"""One build across processes, workers and CI shards (issue "One build across ...")."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import helpers
import pytest

from behave_bstack.emulator.server import TraServer

STEPS = """
from behave import given, then

@given("a number {n:d}")
def _given(context, n):
    context.n = n

@then("it is {n:d}")
def _then(context, n):
    assert context.n == n
"""


def make_suite(root: Path, prefix: str, scenarios: int, per_feature: int = 10) -> Path:
    steps = root / "features" / "steps"
    steps.mkdir(parents=True)
    (steps / "steps.py").write_text(STEPS)
    for start in range(0, scenarios, per_feature):
        lines = [f"Feature: {prefix} part {start // per_feature}", ""]
        for i in range(start, min(start + per_feature, scenarios)):
            lines += [
                f"  Scenario: {prefix} number {i}",
                f"    Given a number {i}",
                f"    Then it is {i}",
                "",
            ]
        (root / "features" / f"{prefix}_{start // per_feature}.feature").write_text(
            "\n".join(lines)
        )
    return root


def clean_env(server: TraServer, journal: Path, **extra: str) -> dict:
    """A run reporting to `server` as project "parallel", build "one build", with no CI
    variables of the machine running the tests (they would derive a run identifier)."""
    env = helpers.clean_env(
        helpers.server_env(
            server,
            journal,
            BROWSERSTACK_PROJECT_NAME="parallel",
            BROWSERSTACK_BUILD_NAME="one build",
            BSTACK_FLUSH_TIMEOUT="60",
        )
    )
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "CI", "JENKINS_URL", "BUILDKITE", "CIRCLECI"):
        env.pop(name, None)
    env.update(extra)
    return env


def behave_cmd() -> list[str]:
    return [
        sys.executable,
        "-m",
        "behave",
        "-f",
        "behave_bstack:BstackFormatter",
        "--no-summary",
        "features",
    ]


def assert_one_build(server: TraServer, expected_tests: int) -> None:
    state = server.state
    builds = list(state.builds.values())
    assert len(builds) == 1, [b.start.get("name") for b in builds]
    build = builds[0]
    assert build.finish_count == 1
    tests = state.tests_in(build.id)
    names = [t.start["name"] for t in tests]
    assert len(names) == expected_tests
    assert len(set(names)) == expected_tests, "a test was reported twice"
    assert all(t.finish_count == 1 for t in tests)
    calls = [c for c in state.calls if c.status < 300]
    finish = [c.seq for c in calls if c.op == "build_finish"]
    others = [c.seq for c in calls if c.op != "build_finish"]
    assert len(finish) == 1 and finish[0] > max(others), "the build was not finished last"


@pytest.fixture
def server():
    with TraServer(username="bs_user", access_key="bs_key") as srv:
        yield srv


def test_four_processes_one_build(server, tmp_path):
    procs = []
    for index in range(4):
        root = make_suite(tmp_path / f"p{index}", f"p{index}", 50)
        env = clean_env(server, tmp_path / "journal", BROWSERSTACK_BUILD_RUN_IDENTIFIER="run-4x50")
        procs.append(
            subprocess.Popen(
                behave_cmd(), cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    assert_one_build(server, 200)
    # Every process kept its own journal.
    assert len(list((tmp_path / "journal").iterdir())) == 4


def test_two_ci_shards_join_one_build(server, tmp_path):
    """Two shards of one GitHub Actions run (different job index) derive the same
    build_run_identifier and so land in one build."""
    for shard in range(2):
        root = make_suite(tmp_path / f"shard{shard}", f"shard{shard}", 5)
        env = clean_env(
            server,
            tmp_path / f"journal{shard}",
            GITHUB_ACTIONS="true",
            GITHUB_RUN_ID="987654",
            GITHUB_RUN_ATTEMPT="1",
            GITHUB_REPOSITORY="acme/shop",
            GITHUB_SERVER_URL="https://github.com",
            GITHUB_JOB="tests",
            GITHUB_SHA="0" * 40,
        )
        env.pop("CI", None)
        result = subprocess.run(behave_cmd(), cwd=root, env=env, capture_output=True, timeout=120)
        assert result.returncode == 0, result.stderr.decode()
    builds = list(server.state.builds.values())
    assert len(builds) == 1
    assert builds[0].start["build_run_identifier"] == builds[0].starts[1]["build_run_identifier"]
    assert len(server.state.tests_in(builds[0].id)) == 10


def test_explicit_build_is_not_finished_by_the_run(server, tmp_path):
    root = make_suite(tmp_path / "p", "p", 3)
    # A build opened outside behave (as `behave-bstack build start` does).
    import base64
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    auth = base64.b64encode(b"bs_user:bs_key").decode()
    conn.request(
        "POST",
        "/ext/v1/builds/start",
        json.dumps(
            {
                "name": "outside",
                "project_name": "parallel",
                "started_at": "2026-01-01T00:00:00.000Z",
            }
        ),
        {"Authorization": "Basic " + auth, "Content-Type": "application/json"},
    )
    build_id = json.loads(conn.getresponse().read())["build_hashed_id"]
    env = clean_env(server, tmp_path / "journal", BROWSERSTACK_BUILD_HASHED_ID=build_id)
    result = subprocess.run(behave_cmd(), cwd=root, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    build = server.state.build(build_id)
    assert len(server.state.tests_in(build_id)) == 3
    assert build.finish_count == 0  # left to whoever opened it
    assert len(server.state.builds) == 1


@pytest.mark.skipif(
    shutil.which("behavex") is None and not (Path(sys.executable).parent / "behavex").exists(),
    reason="behavex is not installed",
)
def test_behavex_workers_one_build(server, tmp_path):
    root = make_suite(tmp_path / "bx", "bx", 12, per_feature=3)
    (root / "behave.ini").write_text(
        textwrap.dedent("""
        [behave]
        format = bstack
        [behave.formatters]
        bstack = behave_bstack:BstackFormatter
    """)
    )
    env = clean_env(server, tmp_path / "journal")
    behavex = str(Path(sys.executable).parent / "behavex")
    result = subprocess.run(
        [
            behavex,
            "features",
            "--parallel-processes",
            "2",
            "--parallel-scheme",
            "scenario",
            "-o",
            str(tmp_path / "bxout"),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout.decode()[-2000:]
    # The keeper may finish the build just after behavex's main process exits.
    import time

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        builds = list(server.state.builds.values())
        if builds and builds[0].finish_count:
            break
        time.sleep(0.1)
    assert_one_build(server, 12)


def test_offline_shard_journals_uploaded_in_any_order_give_one_build(server, tmp_path):
    """Shards that ran without a connection are uploaded later, in either order: one build
    with every test once (each shard's journal finishes the build: the API allows several
    finishes, the last counts)."""
    from behave_bstack.delivery.uploader import deliver_journal
    from behave_bstack.journal import store as journal

    journals = []
    for shard in range(2):
        root = make_suite(tmp_path / f"s{shard}", f"s{shard}", 4)
        env = clean_env(
            server, tmp_path / f"journal{shard}", BROWSERSTACK_BUILD_RUN_IDENTIFIER="r-9"
        )
        for name in ("BROWSERSTACK_USERNAME", "BROWSERSTACK_ACCESS_KEY"):
            env.pop(name)  # offline: journal only
        result = subprocess.run(behave_cmd(), cwd=root, env=env, capture_output=True, timeout=120)
        assert result.returncode == 0 and b"nothing sent" in result.stderr
        (run_dir,) = journal.run_directories(tmp_path / f"journal{shard}")
        journals.append(run_dir)
    options = {"api_url": server.url, "username": "bs_user", "access_key": "bs_key"}
    for run_dir in reversed(journals):  # the second shard first
        lock = journal.try_lock(run_dir)
        report = deliver_journal(run_dir, options, timeout=30)
        lock.close()
        assert report["pending"] == 0 and not report["failed"]
    (build,) = server.state.builds.values()
    names = sorted(t.start["name"] for t in server.state.tests_in(build.id))
    assert names == sorted(f"s{s} number {i}" for s in range(2) for i in range(4))
    assert all(t.finish_count == 1 for t in server.state.tests_in(build.id))
