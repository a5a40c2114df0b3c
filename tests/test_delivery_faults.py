"""Delivery under server faults: every test, step, hook and log arrives exactly once, or
stays in the journal until a later upload delivers it exactly once.

Each end-to-end test runs real behave (a subprocess) with the bstack formatter against the
TRA emulator with one kind of fault, then compares the journal with the emulator's state.
The Delivery unit tests at the end drive the engine directly on a hand-written journal.
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.delivery.dispatch import Delivery, refs_in, retry_after
from behave_bstack.delivery.transport import Response, Transport, TransportError
from behave_bstack.emulator import TraServer
from behave_bstack.journal import store as journal


@pytest.fixture
def srv():
    with TraServer(username="fk_user", access_key="fk_key") as server:
        yield server


def live_run(srv, root: Path, **env: str) -> tuple[fk.Run, Path]:
    run = fk.run_behave(root, fk.bstack_env(srv, root / "journal", **env))
    return run, fk.only_run_dir(root / "journal")


def report_of(run_dir: Path) -> dict:
    report = journal.read_report(run_dir)
    assert report is not None, "the uploader wrote no report.json"
    return report


# --- the baseline -------------------------------------------------------------------------


def test_clean_run_delivers_everything_once(srv, tmp_path):
    root = fk.write_suite(tmp_path, 20, features=2, failing={4, 11})
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root) == 1
    exp = fk.assert_exactly_once(srv, run_dir, min_tests=20)
    assert sum(exp.hooks.values()) == 20 and sum(exp.logs.values()) == 40
    assert report_of(run_dir)["pending"] == 0
    # Nothing left for a later upload: it sends no call at all.
    report, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
    assert sent == 0 and report["pending"] == 0


# --- the service is unreachable -----------------------------------------------------------


def test_server_down_for_the_whole_run_then_upload(srv, tmp_path):
    root = fk.write_suite(tmp_path, 15, failing={2})
    srv.faults.downtime(True, mode="refuse")  # connections refused
    run, run_dir = live_run(srv, root, BSTACK_FLUSH_TIMEOUT="1")
    assert run.returncode == fk.null_rc(root)
    assert run.seconds < 8, "behave waited far beyond its flush deadline"
    assert srv.calls == []
    assert "still pending" in run.stderr and str(run_dir) in run.stderr
    assert not any(a.get("ok") for a in fk.acks(run_dir)), "nothing can have been acknowledged"

    srv.faults.downtime(False)
    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0 and report["stopped"] is None
    fk.assert_exactly_once(srv, run_dir, min_tests=15)
    _, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
    assert sent == 0


@pytest.mark.parametrize("mode", ["drop", "refuse"])
def test_server_down_mid_run_and_back(srv, tmp_path, mode):
    """Whatever the uploader could not send before behave's flush deadline stays in the
    journal; with a later upload everything is on the server exactly once.  (How fast the
    uploader itself recovers is test_one_burst_of_concurrent_failures_is_one_backoff_step.)"""
    root = fk.write_suite(tmp_path, 30)
    env = fk.bstack_env(srv, root / "journal", FAULTKIT_STEP_SLEEP="0.03", BSTACK_FLUSH_TIMEOUT="4")
    behave = fk.Spawned(root, env)
    try:
        fk.wait_for(lambda: len(srv.state.tests) >= 3, timeout=20)
        srv.faults.downtime(True, seconds=1.0, mode=mode)
        rc = behave.wait(timeout=40)
    finally:
        behave.kill()
    assert rc == fk.null_rc(root) == 0
    assert time.monotonic() - behave.began < 15
    assert any(c.fault == "downtime" for c in srv.calls) or mode == "refuse"
    run_dir = fk.only_run_dir(root / "journal")
    report = report_of(run_dir)
    assert report["retries"] >= 1
    if report["pending"]:
        assert "still pending" in behave.stderr()
        fk.wait_for(lambda: not srv.faults.snapshot()["downtime"], timeout=5)
        assert fk.deliver(run_dir, fk.options_for(srv))["pending"] == 0
    fk.assert_exactly_once(srv, run_dir, min_tests=30)


# --- the service answers with errors -------------------------------------------------------


def test_bursts_of_5xx_are_retried(srv, tmp_path):
    root = fk.write_suite(tmp_path, 20, failing={7})
    srv.faults.fail(500, count=3)
    srv.faults.fail(502, count=3, op="test_finish")
    srv.faults.fail(503, count=3, op="hook_start", retry_after=0.2)
    srv.faults.fail(504, count=2, op="logs", body="<html>gateway timeout</html>")
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    fk.assert_exactly_once(srv, run_dir, min_tests=20)
    faulted = [c for c in srv.calls if c.fault == "fail"]
    assert Counter(c.status for c in faulted) == {500: 3, 502: 3, 503: 3, 504: 2}
    assert report_of(run_dir)["retries"] == 11
    assert "11 retries" in run.stderr


def test_429_with_retry_after_pauses_that_long(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10)
    srv.faults.too_many_requests(count=1, retry_after=1, op="test_start")
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    fk.assert_exactly_once(srv, run_dir, min_tests=10)
    limited = [c for c in srv.calls if c.status == 429]
    assert len(limited) == 1
    name = limited[0].body["name"]
    again = [c for c in srv.calls if c.op == "test_start" and c.status == 200]
    retried = next(c for c in again if c.body["name"] == name)
    # Retry-After: 1 sets the shared pause exactly (no jitter, no exponential step).
    assert 0.95 <= retried.time - limited[0].time < 2.5
    later = [c for c in srv.calls if c.seq > limited[0].seq and c.time > limited[0].time + 0.5]
    assert all(c.time >= limited[0].time + 0.95 for c in later)


def test_429_without_retry_after_backs_off(srv, tmp_path):
    root = fk.write_suite(tmp_path, 10)
    srv.faults.too_many_requests(count=3, retry_after=None)
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    fk.assert_exactly_once(srv, run_dir, min_tests=10)
    limited = sorted((c for c in srv.calls if c.status == 429), key=lambda c: c.seq)
    assert len(limited) == 3
    # The first 429 hits build_start (everything waits for it); its retry is backed off.
    assert limited[0].op == "build_start"
    starts = [c for c in srv.calls if c.op == "build_start" and c.status == 200]
    assert len(starts) == 1 and starts[0].time - limited[-1].time >= 0.2
    assert report_of(run_dir)["retries"] == 3


def test_rate_limit_of_160_rps_on_300_scenarios(srv, tmp_path):
    root = fk.write_suite(tmp_path, 300, features=6, hooks=False)
    srv.faults.rate_limit(160)
    run, run_dir = live_run(srv, root, BSTACK_FLUSH_TIMEOUT="40")
    assert run.returncode == fk.null_rc(root)
    fk.assert_exactly_once(srv, run_dir, min_tests=300)
    limited = [c for c in srv.calls if c.status == 429]
    assert limited, "the run never reached the rate limit: the test proves nothing"
    report = report_of(run_dir)
    assert report["retries"] == len(limited) and report["pending"] == 0
    # After the burst, the accepted calls keep to the limit (with 1 s of slack).
    ok = fk.accepted_calls(srv)
    span = ok[-1].time - ok[0].time
    assert len(ok) <= 160 + 160 * span + 160


def test_connection_resets_and_closes_mid_request(srv, tmp_path):
    root = fk.write_suite(tmp_path, 20, failing={3})
    srv.faults.drop(count=2, mode="reset")
    srv.faults.drop(count=2, mode="close", op="test_finish")
    srv.faults.drop(count=2, mode="partial", op="logs")
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    # None of these calls was processed, so retrying them cannot duplicate anything.
    fk.assert_exactly_once(srv, run_dir, min_tests=20)
    dropped = [c for c in srv.calls if c.fault == "drop"]
    assert len(dropped) == 6
    assert report_of(run_dir)["pending"] == 0


@pytest.mark.parametrize("kind", ["html", "truncated", "empty"])
def test_non_json_answers_to_finishes_and_logs(srv, tmp_path, kind):
    """A 200 whose body is not JSON still acknowledges a call that needs no id."""
    root = fk.write_suite(tmp_path, 12)
    srv.faults.garbage(count=3, kind=kind, op="test_finish")
    srv.faults.garbage(count=2, kind=kind, op="logs")
    srv.faults.garbage(count=1, kind=kind, op="build_finish")
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    fk.assert_exactly_once(srv, run_dir, min_tests=12)
    assert report_of(run_dir)["retries"] == 0


# --- answers that are lost after the server acted: at-least-once is the guarantee ----------


def assert_at_least_once(srv, run_dir: Path) -> tuple[list[str], list[str]]:
    """Everything arrived; returns (test names started twice, test names finished twice).
    The build is started and finished exactly once and last; every test has exactly one run
    that was finished; an extra run of a test was started and never finished."""
    exp = fk.expected_from(run_dir)
    build = fk.only_build(srv)
    assert build.finish_count == 1
    ok = fk.accepted_calls(srv)
    assert ok[0].op == "build_start" and ok[-1].op == "build_finish"
    tests = srv.state.tests_in(build.id)
    by_name: dict[str, list] = {}
    for test in tests:
        by_name.setdefault(test.start["name"], []).append(test)
    assert set(by_name) == set(exp.tests)
    twice_started, twice_finished = [], []
    for name, runs in by_name.items():
        finished = [r for r in runs if r.finish_count]
        assert len(finished) == 1, name
        if len(runs) > 1:
            twice_started.append(name)
            assert all(r.finish_count == 0 for r in runs if r is not finished[0])
        if finished[0].finish_count > 1:
            twice_finished.append(name)
            first, *rest = finished[0].finishes
            assert all(body == first for body in rest)
    hooks = srv.state.hooks_in(build.id)
    assert Counter(h.start["name"] for h in hooks) == exp.hooks
    assert all(h.finish_count == 1 for h in hooks)
    assert fk.server_logs(srv, build.id) == exp.logs
    return twice_started, twice_finished


def test_answers_slower_than_the_request_timeout(srv, tmp_path):
    """The server acted on the call but answered after the client gave up: the client
    retries, so that start or finish exists twice (a known limit: the API has no
    idempotency key). Everything else is exact, and nothing is lost."""
    root = fk.write_suite(tmp_path, 10)
    srv.faults.slow(1.5, count=1, op="test_start")
    srv.faults.slow(1.5, count=1, op="test_finish")
    run, run_dir = live_run(srv, root, BSTACK_REQUEST_TIMEOUT="0.5")
    assert run.returncode == fk.null_rc(root)
    twice_started, twice_finished = assert_at_least_once(srv, run_dir)
    assert len(twice_started) == 1 and len(twice_finished) == 1
    assert report_of(run_dir)["retries"] == 2


@pytest.mark.parametrize(
    "fault",
    [
        ("drop", {"mode": "close", "when": "after"}),
        ("drop", {"mode": "partial", "when": "after"}),
        ("garbage", {"kind": "truncated"}),
    ],
    ids=["closed-after", "partial-after", "truncated-json"],
)
def test_answers_lost_after_processing(srv, tmp_path, fault):
    """A start whose answer was lost is repeated (a second, unfinished run: a known limit);
    a finish whose answer was lost is repeated with the same body."""
    name, kwargs = fault
    root = fk.write_suite(tmp_path, 10)
    getattr(srv.faults, name)(count=1, op="test_start", **kwargs)
    if name == "drop":
        getattr(srv.faults, name)(count=1, op="test_finish", **kwargs)
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    twice_started, twice_finished = assert_at_least_once(srv, run_dir)
    assert len(twice_started) == 1
    assert len(twice_finished) == (1 if name == "drop" else 0)


# --- the service refuses ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["wrong-key", "unauthorized-fault"])
def test_401_stops_delivery_at_once_and_keeps_the_journal(srv, tmp_path, how):
    root = fk.write_suite(tmp_path, 15, failing={1})
    env = {}
    if how == "wrong-key":
        env["BROWSERSTACK_ACCESS_KEY"] = "not-the-key"
    else:
        srv.faults.unauthorized(True)
    run, run_dir = live_run(srv, root, **env)
    assert run.returncode == fk.null_rc(root)
    assert run.seconds < 10
    assert [(c.op, c.status) for c in srv.calls] == [("build_start", 401)]
    lines = [line for line in run.stderr.splitlines() if "credentials" in line]
    assert len(lines) == 1, run.stderr
    assert "BROWSERSTACK_USERNAME" in lines[0] and "BROWSERSTACK_ACCESS_KEY" in lines[0]
    assert "still pending" in run.stderr
    assert fk.acks(run_dir) == []
    assert sum(fk.expected_from(run_dir).tests.values()) == 15

    srv.faults.clear()
    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0
    fk.assert_exactly_once(srv, run_dir, min_tests=15)


def test_one_payload_refused_with_422(srv, tmp_path):
    names = {3: "scenario REJECT-ME"}
    root = fk.write_suite(tmp_path, 10, names=names)
    srv.faults.reject("REJECT-ME", message="name is on the blocklist", op="test_start")
    run, run_dir = live_run(srv, root)
    assert run.returncode == fk.null_rc(root)
    # The server's own message is in the summary, naming the test.
    refused = [line for line in run.stderr.splitlines() if "blocklist" in line]
    assert refused and "REJECT-ME" in refused[0] and "422" in refused[0]
    # Everything else arrived exactly once.
    build = fk.only_build(srv)
    assert build.finish_count == 1
    exp = fk.expected_from(run_dir)
    tests = srv.state.tests_in(build.id)
    assert Counter(t.start["name"] for t in tests) == exp.tests - Counter([names[3]])
    assert all(t.finish_count == 1 for t in tests)
    hooks = srv.state.hooks_in(build.id)
    assert Counter(h.start["name"] for h in hooks) == exp.hooks
    assert all(h.finish_count == 1 for h in hooks)
    # Its hook run still arrives, without the link to the refused test.
    hook = next(h for h in hooks if "REJECT-ME" in h.start["name"])
    assert "test_run_id" not in hook.start
    logs = fk.server_logs(srv, build.id)
    assert logs == Counter({k: v for k, v in exp.logs.items() if k[0] != names[3]})
    report = report_of(run_dir)
    assert report["failed"].get("test_start") == 1 and report["failed"].get("test_finish") == 1
    assert report["pending"] == 0


def test_logs_of_a_refused_test_are_not_sent_empty(srv, tmp_path):
    root = fk.write_suite(tmp_path, 5, names={2: "scenario REJECT-ME"})
    srv.faults.reject("REJECT-ME", op="test_start")
    run, _ = live_run(srv, root)
    assert run.returncode == 0
    refused = [(c.op, c.status) for c in srv.calls if c.status != 200]
    assert refused == [("test_start", 422)]


# --- the Delivery engine, driven directly -------------------------------------------------


def transport_for(srv, timeout: float = 5) -> Transport:
    return Transport(srv.url, srv.username, srv.access_key, timeout=timeout)


def deliver_directly(run_dir: Path, srv, **kwargs) -> Delivery:
    delivery = Delivery(run_dir, transport_for(srv), **kwargs)
    try:
        delivery.load_new()
        delivery.run_until(time.monotonic() + 20)
    finally:
        delivery.shutdown()
    return delivery


def test_links_are_found_once_per_event_and_forgotten_once_it_is_settled(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=3)
    delivery = Delivery(run_dir, transport_for(srv))
    delivery.load_new()
    linked = {seq for seq, event in delivery.events.items() if refs_in(event.get("body"))}
    assert linked and set(delivery.links) == linked  # hooks and logs name their test run
    try:
        delivery.run_until(time.monotonic() + 20)
    finally:
        delivery.shutdown()
    assert delivery.report()["pending"] == 0 and delivery.links == {}
    fk.assert_exactly_once(srv, run_dir, min_tests=3)


def test_dependency_order_with_slow_starts(srv, tmp_path):
    """Starts answer slowly, so finishes and logs would overtake them if they could."""
    run_dir = fk.write_journal(tmp_path / "run", tests=30)
    srv.faults.latency(40, path=r"/start$")
    delivery = deliver_directly(run_dir, srv, concurrency=16)
    assert delivery.settled() and delivery.stop_reason is None
    fk.assert_exactly_once(srv, run_dir, min_tests=30)
    calls = fk.accepted_calls(srv)
    assert len(calls) == len(srv.calls)  # nothing was refused (no 404 from an early finish)
    # A run's record keeps the seq of its start call: every later call must come after it.
    seq_of_start = {}
    for test in srv.state.tests.values():
        seq_of_start[test.uuid] = test.seq
    for hook in srv.state.hooks.values():
        seq_of_start[hook.uuid] = hook.seq
        assert hook.seq > seq_of_start[hook.start["test_run_id"]]
    for call in calls:
        if call.op in ("test_finish", "hook_finish"):
            run_id = call.path.rsplit("/", 2)[-2]
            assert call.seq > seq_of_start[run_id], "a finish arrived before its start"
        if call.op == "logs":
            for entry in call.body["logs"]:
                owner = entry.get("test_run_uuid") or entry.get("hook_run_uuid")
                assert call.seq > seq_of_start[owner], "a log arrived before its run's start"
        if call.op == "test_finish":
            for hook_id in call.body.get("hooks", []):
                assert call.seq > seq_of_start[hook_id]
    # The build is finished last, after every other call was answered.
    assert calls[-1].op == "build_finish"
    assert all(c.op != "build_finish" for c in calls[:-1])


def test_build_finish_waits_for_everything_journaled_after_it(srv, tmp_path):
    run_dir = tmp_path / "run"
    fk.write_journal(run_dir, tests=3, ended=False, build_finish=True)
    appender = journal.Appender(run_dir, fk.events(run_dir)[-1]["seq"])
    now = 1_764_000_001_000
    common = {"file_name": "features/f.feature", "scopes": ["feature"]}
    appender.append(
        {"op": "test_start", "ref": "late", "body": {"name": "late", **common, "started_at": now}}
    )
    appender.append(
        {
            "op": "test_finish",
            "ref": "late",
            "body": {"result": "passed", **common, "finished_at": now},
        }
    )
    appender.append({"op": "end"})
    appender.close()
    deliver_directly(run_dir, srv)
    fk.assert_exactly_once(srv, run_dir, min_tests=4)


def test_a_refused_finish_fails_alone(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=6, names={2: "scenario X"})
    srv.faults.reject("step 2 passes", message="bad step", op="test_finish")
    delivery = deliver_directly(run_dir, srv)
    report = delivery.report()
    assert report["failed"] == {"test_finish": 1}
    assert report["reasons"] == ["test_finish t2: HTTP 422: bad step"]
    assert report["pending"] == 0 and report["stopped"] is None
    tests = srv.state.tests_in(fk.only_build(srv).id)
    assert sorted(t.finish_count for t in tests) == [0, 1, 1, 1, 1, 1]
    assert fk.only_build(srv).finish_count == 1
    refused = [a for a in fk.acks(run_dir) if not a["ok"]]
    assert len(refused) == 1 and refused[0]["status"] == 422
    # A later upload does not try it again: the refusal is final.
    _, sent = fk.calls_made(srv, lambda: fk.deliver(run_dir, fk.options_for(srv)))
    assert sent == 0


def test_a_refused_start_fails_its_finish_without_sending_it(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=4, hooks=False, logs=False)
    srv.faults.reject("scenario 0001", op="test_start")
    delivery = deliver_directly(run_dir, srv)
    report = delivery.report()
    assert report["failed"] == {"test_start": 1, "test_finish": 1}
    assert any("its start (t1) was refused" in r for r in report["reasons"])
    assert [c.op for c in srv.calls if c.status != 200] == ["test_start"]
    assert fk.only_build(srv).finish_count == 1


def test_401_stops_after_one_call(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=5)
    srv.faults.unauthorized(True)
    delivery = deliver_directly(run_dir, srv)
    assert len(srv.calls) == 1
    assert "refused the credentials (401" in delivery.stop_reason
    assert delivery.report()["pending"] == len(delivery.events) > 0
    assert fk.acks(run_dir) == []


def test_a_fatal_transport_error_stops_delivery(tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=2)

    class Fatal:
        """A transport whose every connection fails TLS verification."""

        calls = 0
        timeout = 5.0

        def build_request(self, method, path, body=None):
            return b"GET / HTTP/1.1\r\n\r\n"

        def connect(self):
            Fatal.calls += 1
            raise ssl.SSLCertVerificationError("certificate verify failed")

        def explain(self, exc, connecting=False):
            return TransportError("tls", "TLS certificate could not be verified", fatal=True)

    delivery = Delivery(run_dir, Fatal())
    delivery.load_new()
    delivery.run_until(time.monotonic() + 10)
    delivery.shutdown()
    assert Fatal.calls == 1
    assert delivery.stop_reason == "TLS certificate could not be verified"
    assert delivery.report()["pending"] > 0


def test_max_attempts_stops_then_a_later_upload_resumes(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=5)
    srv.faults.fail(500, count=None, op="test_finish")
    # One call at a time, so that nothing is in flight when delivery stops (see below).
    options = fk.options_for(srv, concurrency=1)
    report = fk.deliver(run_dir, options, max_attempts=2)
    assert "still failing after 2 attempts" in report["stopped"]
    assert report["pending"] >= 5  # the finishes and the build finish
    acked_first = {a["seq"] for a in fk.acks(run_dir) if a["ok"]}
    assert acked_first

    srv.faults.clear()
    sendable = [e for e in fk.events(run_dir) if e["op"] not in ("meta", "end")]
    before = len(srv.calls)
    report = fk.deliver(run_dir, fk.options_for(srv))
    assert report["pending"] == 0 and report["stopped"] is None
    # Only what was not acknowledged goes again, each once.
    assert len(srv.calls) - before == len(sendable) - len(acked_first)
    fk.assert_exactly_once(srv, run_dir, min_tests=5)


def test_one_burst_of_concurrent_failures_is_one_backoff_step(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=20)
    srv.faults.fail(503, count=16, op="test_start")
    began = time.monotonic()
    delivery = Delivery(run_dir, transport_for(srv), concurrency=16)
    try:
        delivery.load_new()
        delivery.run_until(time.monotonic() + 5)
    finally:
        delivery.shutdown()
    assert len([c for c in srv.calls if c.status == 503]) == 16
    assert delivery.settled(), f"still {len(delivery.events)} events after 5 s"
    assert time.monotonic() - began < 4


def test_calls_in_flight_when_delivery_stops_are_not_repeated(srv, tmp_path):
    run_dir = fk.write_journal(tmp_path / "run", tests=5, hooks=False)
    srv.faults.latency(300, path=r"/logs$")  # the logs are in flight when a finish fails
    srv.faults.fail(500, count=None, op="test_finish")
    report = fk.deliver(run_dir, fk.options_for(srv), max_attempts=1)
    assert report["stopped"]
    time.sleep(0.5)  # the server has processed the slow calls by now
    srv.faults.clear()
    fk.deliver(run_dir, fk.options_for(srv))
    fk.assert_exactly_once(srv, run_dir, min_tests=5)


def test_retry_after_parsing():
    def answer(value: str | None) -> Response:
        return Response(429, {} if value is None else {"retry-after": value}, b"")

    assert retry_after(answer(None)) is None
    assert retry_after(answer("")) is None
    assert retry_after(answer("3")) == 3.0
    assert retry_after(answer("0.5")) == 0.5
    assert retry_after(answer("-4")) == 0.0
    assert retry_after(answer("100000")) == 300.0  # capped
    assert retry_after(answer("soon")) is None
    future = datetime.now(timezone.utc) + timedelta(seconds=20)
    assert 17 <= retry_after(answer(format_datetime(future, usegmt=True))) <= 20
    past = datetime.now(timezone.utc) - timedelta(seconds=20)
    assert retry_after(answer(format_datetime(past, usegmt=True))) == 0.0
    far = datetime.now(timezone.utc) + timedelta(days=1)
    assert retry_after(answer(format_datetime(far, usegmt=True))) == 300.0
