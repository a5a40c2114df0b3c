"""behave killed, interrupted or unable to journal; the flush deadline.

A killed behave leaves an uploader whose parent is gone (or no uploader at all): the runs
it left open are closed as failed "Interrupted", the build is finished, and nothing is
sent twice, whoever (the orphaned uploader or a later upload) does it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.emulator import TraServer
from behave_bstack.journal import store as journal

BLOCKED = 5  # the scenario where behave is stopped


@pytest.fixture
def srv():
    with TraServer(username="fk_user", access_key="fk_key") as server:
        yield server


def started(srv, name: str, hooks: bool = False) -> bool:
    table = srv.state.hooks if hooks else srv.state.tests
    return any(r.start["name"] == name for r in table.values())


def spawn_and_block(srv, root: Path, where: str, **env: str) -> fk.Spawned:
    """Start behave and wait until it sits in scenario BLOCKED (its step or its
    before_scenario hook) and the uploader has delivered that scenario's start."""
    marker = root / "reached"
    full = fk.bstack_env(srv, root / "journal", FAULTKIT_MARKER=str(marker), **env)
    behave = fk.Spawned(root, full)
    try:
        fk.wait_for(marker.exists, timeout=30)
        name = fk.scenario_name(BLOCKED)
        fk.wait_for(lambda: started(srv, name), timeout=10)
        if where == "hook":
            fk.wait_for(lambda: started(srv, f"before_scenario: {name}", hooks=True), timeout=10)
        # Nothing in flight: a SIGKILL of the uploader mid-call could duplicate that call
        # (the server acts, no ack is written); that is the at-least-once limit, not tested.
        fk.wait_for(lambda: fk.all_acked(fk.only_run_dir(root / "journal")), timeout=10)
    except BaseException:
        behave.kill()
        raise
    return behave


def assert_steps_kept(test, results: list[str], texts: list[str]) -> None:
    """A test closed as interrupted keeps what it had done: the steps that finished
    before the kill with their results and times, the rest skipped, and its duration up
    to the last of them."""
    steps = test.finish["meta"]["steps"]
    assert [s["result"] for s in steps] == results
    assert [s["text"] for s in steps] == texts
    done = [s for s in steps if s["result"] != "skipped"]
    for step in done:
        assert step["started_at"] <= step["finished_at"] and step["duration"] >= 0
    assert all("started_at" not in s for s in steps if s["result"] == "skipped")
    assert test.finish["duration_in_ms"] >= 1
    assert test.finish["finished_at"] >= max(s["finished_at"] for s in done)


def interrupted(record) -> bool:
    body = record.finish or {}
    text = " ".join(line for f in body.get("failure") or () for line in f["backtrace"])
    return body.get("result") == "failed" and "Interrupted" in text


def runs_named(srv, name: str, hooks: bool = False) -> list:
    table = srv.state.hooks if hooks else srv.state.tests
    return [r for r in table.values() if r.start["name"] == name]


def assert_nothing_left(srv, run_dir: Path) -> None:
    """Two more uploads send no call at all."""
    for _ in range(2):
        report, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
        assert sent == 0 and report["pending"] == 0


# --- SIGKILL ------------------------------------------------------------------------------


def test_sigkill_the_orphaned_uploader_closes_the_open_runs(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10, block_hook=BLOCKED)
    behave = spawn_and_block(srv, root, "hook")
    run_dir = fk.only_run_dir(root / "journal")
    uploaders = fk.uploader_pids(run_dir)
    assert len(uploaders) == 1
    killed_at = time.monotonic()
    behave.signal(signal.SIGKILL)
    assert behave.wait(timeout=10) == -signal.SIGKILL
    # The uploader notices that its parent is gone, closes the open runs, delivers, exits.
    fk.wait_for(lambda: fk.pid_gone(uploaders[0]), timeout=20)
    assert time.monotonic() - killed_at < 10
    report = journal.read_report(run_dir)
    assert report is not None and report["pending"] == 0 and report["ended"]
    name = fk.scenario_name(BLOCKED)
    (test,) = runs_named(srv, name)
    (hook,) = runs_named(srv, f"before_scenario: {name}", hooks=True)
    assert interrupted(test) and interrupted(hook)
    fk.assert_exactly_once(srv, run_dir, min_tests=BLOCKED + 1)
    assert_nothing_left(srv, run_dir)


def blocked_run_with_its_uploader_killed(srv, tmp_path, while_behave_runs=None):
    """behave blocked in scenario BLOCKED, its uploader SIGKILLed, then behave too;
    `while_behave_runs(run_dir)` runs in between.  Returns (root, run_dir)."""
    root = fk.write_suite(tmp_path, 10, block_step=BLOCKED)
    behave = spawn_and_block(srv, root, "step")
    run_dir = fk.only_run_dir(root / "journal")
    try:
        for pid in fk.uploader_pids(run_dir):
            fk.kill_pid(pid)
            fk.wait_for(lambda pid=pid: fk.pid_gone(pid), timeout=10)
        if while_behave_runs is not None:
            while_behave_runs(run_dir)
    finally:
        behave.signal(signal.SIGKILL)
        behave.wait(timeout=10)
    return root, run_dir


def test_sigkill_behave_and_uploader_then_upload(srv, tmp_path):
    def upload_leaves_it_alone(run_dir):
        # While behave still writes the journal, an upload leaves it alone.
        report, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
        assert sent == 0 and "still going" in report["stopped"]

    _, run_dir = blocked_run_with_its_uploader_killed(srv, tmp_path, upload_leaves_it_alone)
    assert fk.only_build(srv).finish_count == 0

    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0 and report["stopped"] is None
    (test,) = runs_named(srv, fk.scenario_name(BLOCKED))
    assert interrupted(test)
    assert test.finish["finished_at"] >= test.start["started_at"]
    assert_steps_kept(test, ["passed", "skipped"], [f"step {BLOCKED} passes", "the run blocks"])
    fk.assert_exactly_once(srv, run_dir, min_tests=BLOCKED + 1)
    assert_nothing_left(srv, run_dir)
    # The journal itself records the closing: the finishes were appended to it.
    closing = [e for e in fk.events(run_dir) if e["op"] in ("test_finish", "build_finish")]
    assert closing[-1]["op"] == "build_finish"
    assert "Interrupted" in closing[-2]["body"]["failure"][0]["backtrace"][0]


def test_status_counts_the_closing_of_an_interrupted_run_as_pending(srv, tmp_path):
    """Issue #17 item 4: every journaled call acknowledged, behave and its uploader killed.
    `status` said "0 pending" and exited 0, then `upload` sent 2 calls.  What upload would
    send is pending: status shows it, and exits 1; afterwards status is clean."""
    import io

    from behave_bstack.command import main as cli

    root, run_dir = blocked_run_with_its_uploader_killed(srv, tmp_path)
    assert fk.all_acked(run_dir)
    env = fk.bstack_env(srv, root / "journal")

    def status(*extra: str) -> tuple[int, str]:
        out = io.StringIO()
        code = cli.main(["status", *extra], stdout=out, stderr=io.StringIO(), environ=env)
        return code, out.getvalue()

    code, line = status()
    # The blocked scenario's test run and the build's finish: 2 calls to close the run.
    assert code == 1, line
    assert "2 pending (2 calls that `upload` adds to close the interrupted run)" in line
    assert "interrupted" in line
    code, text = status("--json")
    (record,) = __import__("json").loads(text)
    assert code == 1 and record["pending"] == 2 and record["to_close"] == 2
    assert record["needs_upload"] is True

    report, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
    assert sent == 2 and report["pending"] == 0
    code, line = status()
    assert code == 0 and "0 pending" in line and "ended" in line, line


# --- SIGTERM and Ctrl-C -------------------------------------------------------------------


def test_sigterm_build_finished_within_the_flush_deadline(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10, block_step=BLOCKED)
    behave = spawn_and_block(srv, root, "step", BSTACK_FLUSH_TIMEOUT="5")
    run_dir = fk.only_run_dir(root / "journal")
    term_at = time.monotonic()
    behave.signal(signal.SIGTERM)
    behave.wait(timeout=15)
    fk.wait_for(lambda: fk.only_build(srv).finish_count == 1, timeout=5)
    assert time.monotonic() - term_at < 5
    fk.wait_for(lambda: not fk.uploader_pids(run_dir), timeout=10)
    (test,) = runs_named(srv, fk.scenario_name(BLOCKED))
    assert test.finish_count == 1 and test.finish["result"] == "failed"
    fk.assert_exactly_once(srv, run_dir, min_tests=BLOCKED + 1)
    assert_nothing_left(srv, run_dir)


def test_ctrl_c_finishes_the_run_in_order(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10, block_step=BLOCKED)
    behave = spawn_and_block(srv, root, "step", BSTACK_FLUSH_TIMEOUT="5")
    run_dir = fk.only_run_dir(root / "journal")
    int_at = time.monotonic()
    behave.signal(signal.SIGINT)
    rc = behave.wait(timeout=15)
    assert time.monotonic() - int_at < 5 + 2
    # behave ended the journal itself: its summary is printed and nothing is left over.
    assert "end" in [e["op"] for e in fk.events(run_dir)]
    assert "behave-bstack:" in behave.stderr() and "still pending" not in behave.stderr()
    fk.assert_exactly_once(srv, run_dir, min_tests=BLOCKED + 1)
    (test,) = runs_named(srv, fk.scenario_name(BLOCKED))
    assert test.finish["result"] == "failed"
    assert_nothing_left(srv, run_dir)

    # Same exit code as behave without reporting, interrupted at the same place.
    plain = tmp_path / "plain"
    fk.write_suite(plain, 10, block_step=BLOCKED)
    marker = plain / "reached"
    null = fk.Spawned(plain, {"FAULTKIT_MARKER": str(marker)}, formatter="null")
    try:
        fk.wait_for(marker.exists, timeout=30)
        null.signal(signal.SIGINT)
        assert null.wait(timeout=15) == rc
    finally:
        null.kill()


# --- the journal cannot be written where configured ---------------------------------------


def test_unwritable_journal_dir_falls_back_with_one_line(srv, tmp_path):
    root = fk.write_suite(tmp_path / "suite", 8, failing={2})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = fk.bstack_env(srv, blocker / "sub", TMPDIR=str(temp))
    run = fk.run_behave(root, env)
    assert run.returncode == fk.null_rc(root)
    lines = [line for line in run.stderr.splitlines() if "cannot write the journal" in line]
    assert len(lines) == 1, run.stderr
    assert str(blocker / "sub") in lines[0]
    # behave-bstack-<uid>; where there is no uid (Windows, the simulated platform) the login
    # name stands in (private_dirs.user_tag).
    (user_dir,) = temp.glob("behave-bstack-*")
    assert _simulated_ids() or user_dir.name == f"behave-bstack-{os.getuid()}"
    run_dir = fk.only_run_dir(user_dir / "journal")
    assert str(run_dir) in lines[0]
    fk.assert_exactly_once(srv, run_dir, min_tests=8)


def _simulated_ids() -> bool:
    return bool(os.environ.get("BSTACK_SIMULATE_PLATFORM"))


# --- the flush deadline -------------------------------------------------------------------


def slow_server_run(srv, root: Path) -> tuple[fk.Run, Path]:
    srv.faults.latency(2000)
    run = fk.run_behave(root, fk.bstack_env(srv, root / "journal", BSTACK_FLUSH_TIMEOUT="1"))
    return run, fk.only_run_dir(root / "journal")


def test_flush_deadline_is_kept_and_upload_completes_later(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10)
    plain = fk.run_behave(root, {}, formatter="null")
    run, run_dir = slow_server_run(srv, root)
    assert run.returncode == plain.returncode
    assert run.seconds < plain.seconds + 1 + 2.5, "behave overstayed its flush deadline"
    pending = [line for line in run.stderr.splitlines() if "still pending" in line]
    assert len(pending) == 1 and str(run_dir) in pending[0]
    assert journal.read_report(run_dir)["pending"] > 0

    time.sleep(2.2)  # calls that were in flight reach the server now
    srv.faults.clear()
    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0 and report["stopped"] is None
    # The upload delivered the whole run into one build, finished once.  (A call that
    # was in flight at the deadline is recorded before the uploader exits: see the test below.)
    complete = [b for b in srv.state.builds.values() if b.finish_count]
    assert len(complete) == 1
    exp = fk.expected_from(run_dir)
    tests = srv.state.tests_in(complete[0].id)
    assert set(t.start["name"] for t in tests) == set(exp.tests)
    assert all(
        sum(t.finish_count for t in tests if t.start["name"] == name) == 1 for name in exp.tests
    )


def test_calls_in_flight_at_the_flush_deadline_are_not_repeated(srv, tmp_path):
    root = fk.write_suite(tmp_path, 5)
    _, run_dir = slow_server_run(srv, root)
    time.sleep(2.2)
    srv.faults.clear()
    fk.deliver(run_dir, fk.options_for(srv))
    fk.assert_exactly_once(srv, run_dir, min_tests=5)
