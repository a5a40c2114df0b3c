"""The local TRA emulator: validate() rules, the HTTP endpoints, faults, control, process."""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from behave_bstack.emulator import TraServer, validate

TS = "2025-11-11T10:30:05.123Z"
AUTH = "Basic " + base64.b64encode(b"bs_user:bs_key").decode()
REPO = Path(__file__).resolve().parents[1]


# --- payloads -----------------------------------------------------------------------------


def bstart(**kw: object) -> dict:
    return {"name": "nightly", "project_name": "shop", "started_at": TS, **kw}


def tstart(**kw: object) -> dict:
    return {
        "name": "Log in",
        "file_name": "f/login.feature",
        "scopes": ["Login"],
        "started_at": TS,
        **kw,
    }


def tfinish(**kw: object) -> dict:
    return {
        "result": "passed",
        "finished_at": TS,
        "file_name": "f/login.feature",
        "scopes": ["Login"],
        **kw,
    }


def hstart(**kw: object) -> dict:
    body = {
        "hook_type": "before_scenario",
        "name": "before_scenario",
        "file_name": "f/environment.py",
    }
    return {**body, "scopes": ["Login"], "started_at": TS, **kw}


def hfinish(**kw: object) -> dict:
    body = {"hook_type": "before_scenario", "result": "passed", "finished_at": TS}
    return {**body, "file_name": "f/environment.py", "scopes": ["Login"], **kw}


def log(**kw: object) -> dict:
    return {"kind": "TEST_LOG", "timestamp": TS, "level": "INFO", "message": "hi", **kw}


def steps(*ids: str) -> dict:
    return {"steps": [{"id": i, "keyword": "Given", "text": "x", "result": "passed"} for i in ids]}


# --- validate() ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, body",
    [
        ("build_start", bstart()),
        (
            "build_start",
            bstart(
                tags=["a"] * 50,
                build_run_identifier="x" * 64,
                host_info={
                    "hostname": "h",
                    "platform": "linux",
                    "type": "container",
                    "arch": "x64",
                },
                ci_info={"name": "GitHub Actions", "build_number": "12"},
                version_control={"name": "git", "sha": "abc"},
                framework={"name": "behave", "version": "1.3.3"},
                unknown_extra={"anything": [1, 2]},
            ),
        ),
        ("build_finish", {"finished_at": "2025-11-11T10:30:05Z"}),
        ("test_start", tstart(scopes=["s"] * 20, body={"lang": "gherkin", "code": "Given x"})),
        (
            "test_finish",
            tfinish(
                duration_in_ms=1,
                failure=[{"backtrace": ["l" * 2000] + ["l"] * 999}] * 100,
                custom_metadata={f"k{i}": ["v" * 500] * 10 for i in range(24)} | {"one": "str"},
                environment={"os": "linux", "os_version": "x" * 50},
                meta=steps("1", "2"),
                hooks=["h1"],
            ),
        ),
        ("hook_start", hstart(test_run_id="t")),
        ("hook_finish", hfinish(duration_in_ms=5)),
        (
            "logs",
            {
                "logs": [log(test_run_uuid="t", message="m" * 10_000)] * 499
                + [log(kind="HTTP", hook_run_uuid="h", http_response={"status_code": 599})]
            },
        ),
    ],
)
def test_validate_accepts_valid_bodies(op: str, body: dict) -> None:
    assert validate(op, body) == []


@pytest.mark.parametrize(
    "op, body, expected",
    [
        ("build_start", bstart(name="n" * 256), "name: longer than 255"),
        ("build_start", {"name": "n", "started_at": TS}, "project_name: required"),
        (
            "build_start",
            bstart(build_run_identifier="x" * 65),
            "build_run_identifier: longer than 64",
        ),
        ("build_start", bstart(tags=["t"] * 51), "tags: expected at most 50 items"),
        ("build_start", bstart(tags=["t" * 101]), "tags[0]: longer than 100"),
        ("build_start", bstart(framework={"name": "behave"}), "framework.version: required"),
        (
            "build_start",
            bstart(host_info={"platform": "linux2"}),
            "host_info.platform: must be one of",
        ),
        ("build_start", bstart(host_info={"arch": "aarch64"}), "host_info.arch"),
        (
            "build_start",
            bstart(ci_info={"build_number": 12}),
            "ci_info.build_number: expected a string",
        ),
        ("build_finish", {}, "finished_at: required"),
        ("build_finish", {"finished_at": "2025-11-11T10:30:05"}, "finished_at: not an ISO 8601"),
        ("build_finish", {"finished_at": "2025-02-30T10:30:05Z"}, "finished_at: not an ISO 8601"),
        ("build_finish", {"finished_at": 1731320000}, "finished_at: expected an ISO 8601"),
        ("test_start", tstart(name="n" * 501), "name: longer than 500"),
        ("test_start", tstart(file_name="f" * 1001), "file_name: longer than 1000"),
        ("test_start", tstart(scopes=["s"] * 21), "scopes: expected 1 to 20 items; got 21"),
        ("test_start", tstart(scopes=[]), "scopes: expected 1 to 20 items; got 0"),
        ("test_start", tstart(scopes="Login"), "scopes: expected an array"),
        ("test_start", tstart(scopes=["s" * 101]), "scopes[0]: longer than 100"),
        ("test_start", tstart(result="r" * 51), "result: longer than 50"),
        ("test_start", tstart(location=None), "location: expected a string, got null"),
        ("test_start", tstart(environment={"os_version": "v" * 51}), "environment.os_version"),
        ("test_start", tstart(environment={"device": "d" * 101}), "environment.device"),
        ("test_start", tstart(body={"code": 3}), "body.code: expected a string"),
        ("test_finish", tfinish(result="broken"), "result: must be one of passed, failed"),
        ("test_finish", tfinish(duration_in_ms=0), "duration_in_ms: must be >= 1"),
        ("test_finish", tfinish(duration_in_ms=True), "duration_in_ms: expected an integer"),
        ("test_finish", tfinish(duration_in_ms=1.5), "duration_in_ms: expected an integer"),
        (
            "test_finish",
            tfinish(meta=steps("a", "b", "a")),
            "meta.steps[2].id: duplicate of meta.steps[0].id",
        ),
        ("test_finish", tfinish(meta={"steps": [{"text": "x"}]}), "meta.steps[0].id: required"),
        (
            "test_finish",
            tfinish(meta={"steps": [{"id": "1"}, {"id": "2", "failure": "f" * 5001}]}),
            "meta.steps[1].failure: longer than 5000",
        ),
        (
            "test_finish",
            tfinish(meta={"steps": [{"id": "1", "result": "ok"}]}),
            "meta.steps[0].result",
        ),
        (
            "test_finish",
            tfinish(failure=[{"backtrace": ["x"]}] * 101),
            "failure: expected at most 100",
        ),
        (
            "test_finish",
            tfinish(failure=[{"backtrace": ["x"] * 1001}]),
            "failure[0].backtrace: expected at most 1000",
        ),
        (
            "test_finish",
            tfinish(failure=[{"backtrace": ["x" * 2001]}]),
            "failure[0].backtrace[0]: longer than 2000",
        ),
        ("test_finish", tfinish(failure=[{}]), "failure[0].backtrace: required"),
        (
            "test_finish",
            tfinish(custom_metadata={f"k{i}": "v" for i in range(26)}),
            "custom_metadata: at most 25 keys",
        ),
        (
            "test_finish",
            tfinish(custom_metadata={"k": ["v"] * 11}),
            "custom_metadata.k: at most 10 values",
        ),
        (
            "test_finish",
            tfinish(custom_metadata={"k": ["v" * 501]}),
            "custom_metadata.k[0]: longer than 500",
        ),
        ("test_finish", tfinish(custom_metadata={"k" * 501: "v"}), "key longer than 500"),
        (
            "test_finish",
            tfinish(custom_metadata={"k": 5}),
            "custom_metadata.k: expected a string or an array",
        ),
        ("test_finish", tfinish(hooks="h"), "hooks: expected an array"),
        ("hook_start", hstart(hook_type="h" * 51), "hook_type: longer than 50"),
        (
            "hook_finish",
            {k: v for k, v in hfinish().items() if k != "hook_type"},
            "hook_type: required",
        ),
        (
            "logs",
            {"logs": [log(test_run_uuid="t")] * 501},
            "logs: expected 1 to 500 items; got 501",
        ),
        ("logs", {"logs": []}, "logs: expected 1 to 500 items; got 0"),
        ("logs", {}, "logs: required"),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", hook_run_uuid="h")]},
            "logs[0]: exactly one of test_run_uuid / hook_run_uuid",
        ),
        ("logs", {"logs": [log()]}, "got neither"),
        (
            "logs",
            {"logs": [{"kind": "TEST_LOG", "test_run_uuid": "t"}]},
            "logs[0].timestamp: required",
        ),
        ("logs", {"logs": [log(test_run_uuid="t", kind="LOG")]}, "logs[0].kind: must be one of"),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", message="m" * 10_001)]},
            "logs[0].message: longer than 10000",
        ),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", attachment_type="PDF")]},
            "logs[0].attachment_type",
        ),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", failure="yes")]},
            "logs[0].failure: expected a boolean",
        ),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", http_response={"status_code": 600})]},
            "logs[0].http_response.status_code: must be <= 599",
        ),
        (
            "logs",
            {"logs": [log(test_run_uuid="t", http_response={"status_code": 99})]},
            "status_code: must be >= 100",
        ),
        ("test_start", tstart(name="a\x00b"), "name: contains a NUL character"),
        (
            "test_start",
            tstart(extra={"deep": ["ok", "\ud800"]}),
            "extra.deep[1]: contains a NUL character or a lone surrogate",
        ),
        ("test_start", tstart(custom_metadata={"k\x00": "v"}), "key contains a NUL"),
        ("build_start", ["not", "an", "object"], "body: expected a JSON object"),
    ],
)
def test_validate_rejects_with_field_path(op: str, body: object, expected: str) -> None:
    errors = validate(op, body)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    "stamp, ok",
    [
        ("2025-11-11T10:30:05Z", True),
        ("2025-11-11T10:30:05.123Z", True),
        ("2025-11-11T10:30:05+00:00", True),
        ("2025-11-11T10:30:05.123456+00:00", True),
        ("2024-02-29T23:59:59Z", True),
        ("2025-02-29T00:00:00Z", False),
        ("2025-13-01T00:00:00Z", False),
        ("2025-11-11 10:30:05Z", False),
        ("2025-11-11T25:30:05Z", False),
        ("2025-11-11T10:30:05.Z", False),
        ("yesterday", False),
    ],
)
def test_validate_timestamps(stamp: str, ok: bool) -> None:
    assert (validate("build_finish", {"finished_at": stamp}) == []) is ok


def test_validate_reports_every_error_and_rejects_unknown_ops() -> None:
    errors = validate("test_finish", {"result": "x", "scopes": []})
    assert {e.split(":")[0] for e in errors} >= {"result", "scopes", "finished_at", "file_name"}
    with pytest.raises(ValueError):
        validate("test_update", {})


# --- HTTP helpers -------------------------------------------------------------------------


class Resp:
    def __init__(self, status: int, headers: http.client.HTTPMessage, data: bytes) -> None:
        self.status, self.headers, self.data = status, headers, data

    @property
    def json(self) -> dict:
        return json.loads(self.data)


class Client:
    def __init__(self, srv: TraServer, timeout: float = 5.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        auth: str | None = AUTH,
        raw: bytes | None = None,
        ctype: str | None = "application/json",
    ) -> Resp:
        headers = {}
        if auth:
            headers["Authorization"] = auth
        if ctype:
            headers["Content-Type"] = ctype
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        self.conn.request(method, path, data, headers)
        r = self.conn.getresponse()
        return Resp(r.status, r.headers, r.read())

    def ok(self, method: str, path: str, body: object) -> dict:
        r = self.call(method, path, body)
        assert r.status == 200, (r.status, r.data)
        return r.json

    def build(self, **kw: object) -> str:
        return self.ok("POST", "/ext/v1/builds/start", bstart(**kw))["build_hashed_id"]

    def test(self, bid: str, **kw: object) -> str:
        return self.ok("POST", f"/ext/v1/builds/{bid}/tests/start", tstart(**kw))["uuid"]

    def hook(self, bid: str, **kw: object) -> str:
        return self.ok("POST", f"/ext/v1/builds/{bid}/hooks/start", hstart(**kw))["uuid"]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(scope="module")
def server() -> TraServer:
    with TraServer(username="bs_user", access_key="bs_key") as srv:
        yield srv


@pytest.fixture
def srv(server: TraServer) -> TraServer:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(srv: TraServer) -> Client:
    c = Client(srv)
    yield c
    c.close()


# --- endpoints ----------------------------------------------------------------------------


def test_auth_missing_or_wrong_is_401_plain_text(srv: TraServer, client: Client) -> None:
    wrong = "Basic " + base64.b64encode(b"bs_user:nope").decode()
    for auth in (None, wrong, "Bearer abc"):
        r = client.call("POST", "/ext/v1/builds/start", bstart(), auth=auth)
        assert r.status == 401
        assert r.headers["Content-Type"].startswith("text/plain")
        with pytest.raises(ValueError):
            json.loads(r.data)
    assert srv.state.builds == {}
    assert [c.status for c in srv.calls] == [401, 401, 401]


def test_non_json_body_is_400(srv: TraServer, client: Client) -> None:
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"a": NaN}'):
        r = client.call("POST", "/ext/v1/builds/start", raw=raw)
        assert r.status == 400, raw
        assert r.json["success"] is False
    r = client.call("POST", "/ext/v1/builds/start", bstart(), ctype="text/plain")
    assert r.status == 400 and "Content-Type" in r.json["message"]
    assert srv.calls[0].body == "{not json"  # raw text kept when the body is not JSON


def test_full_happy_path_and_recorded_state(srv: TraServer, client: Client) -> None:
    bid = client.build(build_run_identifier="")
    assert re.fullmatch(r"[a-z0-9]{40}", bid)
    tid = client.test(bid)
    assert uuid.UUID(tid).version == 4
    hid = client.hook(bid, test_run_id=tid)
    assert uuid.UUID(hid).version == 4

    r = client.ok("PUT", f"/ext/v1/builds/{bid}/hooks/{hid}/finish", hfinish())
    assert r == {"success": True, "message": "Hook run updated successfully."}
    r = client.ok("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish(hooks=[hid]))
    assert r["success"] is True and r["message"]
    logs = [log(test_run_uuid=tid), log(kind="HOOK_LOG", hook_run_uuid=hid)]
    r = client.ok("POST", f"/ext/v1/builds/{bid}/logs", {"logs": logs})
    assert r["success"] is True
    r = client.ok("PUT", f"/ext/v1/builds/{bid}/finish", {"finished_at": TS})
    assert r == {"success": True, "message": "Build finished successfully."}

    state = srv.state
    assert list(state.builds) == [bid]
    build = state.build(bid)
    assert build.start["name"] == "nightly" and build.finish_count == 1
    [test] = state.tests_in(bid)
    assert test.uuid == tid and test.finish_count == 1 and test.finish["hooks"] == [hid]
    [hook] = state.hooks_in(bid)
    assert hook.hook_type == "before_scenario" and hook.start["test_run_id"] == tid
    assert [rec.entry["kind"] for rec in state.logs_in(bid)] == ["TEST_LOG", "HOOK_LOG"]
    ops = ["build_start", "test_start", "hook_start", "hook_finish", "test_finish", "logs"]
    assert [c.op for c in state.calls_in(bid)] == [*ops, "build_finish"]
    seqs = [c.seq for c in srv.calls]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(c.status == 200 for c in srv.calls)
    assert state.calls_in(bid, op="build_finish")[-1].seq == max(c.seq for c in state.calls_in(bid))


def test_keep_alive_serves_many_calls_on_one_connection(client: Client) -> None:
    bid = client.build()
    sock = client.conn.sock
    for _ in range(5):
        client.test(bid)
    assert client.conn.sock is sock


def test_unknown_ids_and_paths_are_404(srv: TraServer, client: Client) -> None:
    bid = client.build()
    other = client.build(name="other")
    tid = client.test(other)
    hid = client.hook(other)
    cases = [
        ("POST", "/ext/v1/builds/nope/tests/start", tstart()),
        ("PUT", "/ext/v1/builds/nope/finish", {"finished_at": TS}),
        ("PUT", f"/ext/v1/builds/{bid}/tests/{uuid.uuid4()}/finish", tfinish()),
        ("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish()),  # other build's test
        ("PUT", f"/ext/v1/builds/{bid}/hooks/{hid}/finish", hfinish()),
        ("POST", "/ext/v1/builds/nope/logs", {"logs": [log(test_run_uuid=tid)]}),
        ("POST", "/ext/v2/whatever", {}),
    ]
    for method, path, body in cases:
        r = client.call(method, path, body)
        assert r.status == 404, (path, r.data)
        assert r.json["success"] is False
    assert client.call("GET", "/ext/v1/builds/start").status == 405
    assert srv.state.tests_in(other)[0].finish_count == 0


@pytest.mark.parametrize(
    "method, path, body, field",
    [
        ("POST", "/ext/v1/builds/start", bstart(name="n" * 256), "name"),
        ("POST", "/ext/v1/builds/{bid}/tests/start", tstart(scopes=["s"] * 21), "scopes"),
        (
            "PUT",
            "/ext/v1/builds/{bid}/tests/{tid}/finish",
            tfinish(duration_in_ms=0),
            "duration_in_ms",
        ),
        ("PUT", "/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish(result="ok"), "result"),
        (
            "PUT",
            "/ext/v1/builds/{bid}/tests/{tid}/finish",
            tfinish(meta=steps("1", "1")),
            "meta.steps[1].id",
        ),
        ("POST", "/ext/v1/builds/{bid}/logs", {"logs": [log(test_run_uuid="{tid}")] * 501}, "logs"),
        (
            "POST",
            "/ext/v1/builds/{bid}/logs",
            {"logs": [log(test_run_uuid="{tid}", hook_run_uuid="x")]},
            "logs[0]",
        ),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    srv: TraServer, client: Client, method: str, path: str, body: dict, field: str
) -> None:
    bid = client.build()
    tid = client.test(bid)
    text = json.dumps(body).replace("{tid}", tid)
    r = client.call(method, path.format(bid=bid, tid=tid), raw=text.encode())
    assert r.status == 422
    assert r.json["success"] is False and r.json["message"].startswith(field + ":")
    assert srv.state.tests_in(bid)[0].finish_count == 0
    assert srv.state.logs_in(bid) == []


def test_build_run_identifier_merges_builds(client: Client, srv: TraServer) -> None:
    a = client.build(build_run_identifier="run-7")
    b = client.build(build_run_identifier="run-7")
    c = client.build(build_run_identifier="run-8")
    d = client.build(name="other", build_run_identifier="run-7")
    e, f = client.build(), client.build()
    assert a == b
    assert len({a, c, d, e, f}) == 5
    assert len(srv.state.build(a).starts) == 2


def test_hook_type_must_match_and_links_must_exist(srv: TraServer, client: Client) -> None:
    bid = client.build()
    tid = client.test(bid)
    hid = client.hook(bid)
    r = client.call(
        "PUT", f"/ext/v1/builds/{bid}/hooks/{hid}/finish", hfinish(hook_type="after_scenario")
    )
    assert r.status == 422 and r.json["message"].startswith("hook_type")
    r = client.call(
        "POST", f"/ext/v1/builds/{bid}/logs", {"logs": [log(test_run_uuid=str(uuid.uuid4()))]}
    )
    assert r.status == 422 and "logs[0].test_run_uuid" in r.json["message"]
    r = client.call("POST", f"/ext/v1/builds/{bid}/logs", {"logs": [log(hook_run_uuid=tid)]})
    assert r.status == 422 and "logs[0].hook_run_uuid" in r.json["message"]
    r = client.call("POST", f"/ext/v1/builds/{bid}/hooks/start", hstart(test_run_id="local-1"))
    assert r.status == 422 and r.json["message"].startswith("test_run_id")
    r = client.call("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish(hooks=["local-2"]))
    assert r.status == 422 and r.json["message"].startswith("hooks[0]")
    assert srv.state.hooks_in(bid)[0].finish_count == 0 and srv.state.logs_in(bid) == []


def test_duplicate_finishes_are_accepted_and_counted(srv: TraServer, client: Client) -> None:
    bid = client.build()
    tid = client.test(bid)
    for result in ("failed", "passed"):
        client.ok("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish(result=result))
    client.ok("PUT", f"/ext/v1/builds/{bid}/finish", {"finished_at": TS})
    client.ok("PUT", f"/ext/v1/builds/{bid}/finish", {"finished_at": TS})
    test = srv.state.tests[tid]
    assert test.finish_count == 2 and test.finish["result"] == "passed"
    assert srv.state.build(bid).finish_count == 2


def test_concurrent_clients_are_all_recorded(srv: TraServer) -> None:
    bid = Client(srv).build()
    seen: list[str] = []

    def work() -> None:
        c = Client(srv)
        seen.extend(c.test(bid) for _ in range(20))
        c.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 120
    assert {t.uuid for t in srv.state.tests_in(bid)} == set(seen)


# --- faults -------------------------------------------------------------------------------


def test_latency_applies_to_matching_paths(srv: TraServer, client: Client) -> None:
    bid = client.build()
    srv.faults.latency(250, path=r"/tests/start$")
    t0 = time.monotonic()
    client.test(bid)
    slow = time.monotonic() - t0
    t0 = time.monotonic()
    client.ok("PUT", f"/ext/v1/builds/{bid}/finish", {"finished_at": TS})
    fast = time.monotonic() - t0
    assert slow >= 0.25 and fast < 0.2


def test_fail_next_calls_then_recover(srv: TraServer, client: Client) -> None:
    srv.faults.fail(503, count=2, body="upstream down")
    for _ in range(2):
        r = client.call("POST", "/ext/v1/builds/start", bstart())
        assert r.status == 503 and r.data == b"upstream down"
    assert srv.state.builds == {}  # a failed call is not processed
    client.build()
    assert [c.status for c in srv.calls] == [503, 503, 200]
    assert [c.fault for c in srv.calls] == ["fail", "fail", None]


def test_fail_filtered_by_op(srv: TraServer, client: Client) -> None:
    srv.faults.fail(500, count=1, op="test_finish")
    bid = client.build()
    tid = client.test(bid)
    r = client.call("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish())
    assert r.status == 500 and r.json["success"] is False
    client.ok("PUT", f"/ext/v1/builds/{bid}/tests/{tid}/finish", tfinish())


def test_429_with_and_without_retry_after(srv: TraServer, client: Client) -> None:
    srv.faults.too_many_requests(count=1, retry_after=3)
    srv.faults.too_many_requests(count=1)
    r1 = client.call("POST", "/ext/v1/builds/start", bstart())
    r2 = client.call("POST", "/ext/v1/builds/start", bstart())
    assert (r1.status, r1.headers["Retry-After"]) == (429, "3")
    assert (r2.status, r2.headers["Retry-After"]) == (429, None)
    client.build()


def test_rate_limit_token_bucket(srv: TraServer, client: Client) -> None:
    srv.faults.rate_limit(1, burst=3)  # slow refill: the 4th quick call finds the bucket empty
    answers = [client.call("POST", "/ext/v1/builds/start", bstart()) for _ in range(4)]
    assert [r.status for r in answers] == [200, 200, 200, 429]
    assert answers[3].headers["Retry-After"] == "1"
    assert len(srv.state.builds) == 3
    srv.faults.rate_limit(None)
    assert client.call("POST", "/ext/v1/builds/start", bstart()).status == 200


@pytest.mark.parametrize(
    "mode, error",
    [
        ("close", http.client.RemoteDisconnected),
        ("reset", ConnectionResetError),
        ("partial", http.client.IncompleteRead),
    ],
)
def test_drop_connection(srv: TraServer, client: Client, mode: str, error: type) -> None:
    srv.faults.drop(count=1, mode=mode)
    with pytest.raises(error):
        client.call("POST", "/ext/v1/builds/start", bstart())
    client.close()
    assert srv.state.builds == {}
    client.build()  # the next call is answered
    assert srv.calls[0].fault == "drop" and srv.calls[0].status is None


def test_drop_after_processing_loses_only_the_answer(srv: TraServer, client: Client) -> None:
    bid = client.build()
    srv.faults.drop(count=1, when="after", op="test_start")
    with pytest.raises(http.client.RemoteDisconnected):
        client.call("POST", f"/ext/v1/builds/{bid}/tests/start", tstart())
    assert len(srv.state.tests_in(bid)) == 1


def test_downtime_drop_until_told_otherwise(srv: TraServer, client: Client) -> None:
    srv.faults.downtime(True)
    for _ in range(2):
        with pytest.raises(http.client.RemoteDisconnected):
            client.call("POST", "/ext/v1/builds/start", bstart())
    srv.faults.downtime(False)
    client.build()
    srv.faults.downtime(True, seconds=0.2)
    with pytest.raises(http.client.RemoteDisconnected):
        client.call("POST", "/ext/v1/builds/start", bstart())
    time.sleep(0.25)
    client.build()


def test_downtime_refuse_closes_the_listener_then_comes_back() -> None:
    with TraServer() as srv:
        port = srv.port
        srv.faults.downtime(True, seconds=0.4, mode="refuse")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1)
        deadline = time.monotonic() + 3
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert srv.port == port
        Client(srv).build()


def test_slow_answer_beyond_client_timeout_still_takes_effect(srv: TraServer) -> None:
    srv.faults.slow(0.6, count=1, op="build_start")
    c = Client(srv, timeout=0.2)
    with pytest.raises(TimeoutError):
        c.call("POST", "/ext/v1/builds/start", bstart())
    c.close()
    assert len(srv.state.builds) == 1


@pytest.mark.parametrize("kind", ["html", "truncated", "empty"])
def test_garbage_200_answers(srv: TraServer, client: Client, kind: str) -> None:
    srv.faults.garbage(count=1, kind=kind)
    r = client.call("POST", "/ext/v1/builds/start", bstart())
    assert r.status == 200
    with pytest.raises(ValueError):
        json.loads(r.data)
    assert len(srv.state.builds) == 1  # processed, only the answer is mangled
    assert client.call("POST", "/ext/v1/builds/start", bstart()).json["success"] is True


def test_unauthorized_mode(srv: TraServer, client: Client) -> None:
    srv.faults.unauthorized(True)
    r = client.call("POST", "/ext/v1/builds/start", bstart())
    assert r.status == 401 and r.headers["Content-Type"].startswith("text/plain")
    srv.faults.unauthorized(False)
    client.build()


def test_reject_payload_containing_substring(srv: TraServer, client: Client) -> None:
    srv.faults.reject("poison", message="scopes[0]: nope")
    srv.faults.reject("Größe")
    bid = client.build()
    r = client.call("POST", f"/ext/v1/builds/{bid}/tests/start", tstart(name="a poison test"))
    assert r.status == 422 and r.json == {"success": False, "message": "scopes[0]: nope"}
    r = client.call("POST", f"/ext/v1/builds/{bid}/tests/start", tstart(name="Größe"))
    assert r.status == 422  # matched although json.dumps escaped it as \\u00f6
    client.test(bid)
    assert len(srv.state.tests_in(bid)) == 1


def test_faults_compose_and_clear(srv: TraServer, client: Client) -> None:
    srv.faults.fail(502, count=1)
    srv.faults.garbage(count=1)
    assert client.call("POST", "/ext/v1/builds/start", bstart()).status == 502
    r = client.call("POST", "/ext/v1/builds/start", bstart())
    assert r.status == 200 and not r.data.startswith(b"{")
    srv.faults.fail(500, count=None)
    srv.faults.clear()
    client.build()
    assert srv.faults.snapshot()["rules"] == []


def test_bad_fault_arguments_raise(srv: TraServer) -> None:
    with pytest.raises(ValueError):
        srv.faults.drop(mode="explode")
    with pytest.raises(ValueError):
        srv.faults.fail(500, op="test_update")
    with pytest.raises(ValueError):
        srv.faults.fail(500, count=0)


# --- control endpoints --------------------------------------------------------------------


def test_control_endpoints(srv: TraServer, client: Client) -> None:
    bid = client.build()
    client.test(bid)
    r = client.call("GET", "/_emulator/state", auth=None)
    state = r.json
    assert r.status == 200 and [b["id"] for b in state["builds"]] == [bid]
    assert len(state["tests"]) == 1 and state["calls"] == 2
    assert (
        client.call("GET", "/_emulator/state?calls=1", auth=None).json["calls"][0]["op"]
        == "build_start"
    )

    spec = {
        "fail": [{"status": 503, "count": 1}],
        "latency": {"ms": 1},
        "too_many_requests": {"retry_after": 1},
    }
    r = client.call("POST", "/_emulator/faults", spec, auth=None)
    assert r.status == 200 and len(r.json["faults"]["rules"]) == 2
    assert client.call("POST", "/ext/v1/builds/start", bstart()).status == 503
    assert client.call("POST", "/ext/v1/builds/start", bstart()).status == 429
    assert client.call("GET", "/_emulator/faults", auth=None).json["latency_ms"] == 1.0

    assert client.call("POST", "/_emulator/faults", {"explode": 1}, auth=None).status == 400
    bad = {"downtime": {"mode": "refuse"}}
    assert client.call("POST", "/_emulator/faults", bad, auth=None).status == 400
    assert (
        client.call("POST", "/_emulator/faults", {"drop": {"mode": "x"}}, auth=None).status == 400
    )
    assert client.call("GET", "/_emulator/nothing", auth=None).status == 404

    assert client.call("POST", "/_emulator/reset", auth=None).json == {"success": True}
    assert srv.state.builds == {} and srv.calls == []
    assert srv.faults.snapshot()["latency_ms"] == 0
    assert client.call("GET", "/_emulator/health", auth=None).status == 200


def test_reset_can_keep_faults(srv: TraServer, client: Client) -> None:
    srv.faults.fail(500, count=1)
    client.call("POST", "/_emulator/reset", {"faults": False}, auth=None)
    assert client.call("POST", "/ext/v1/builds/start", bstart()).status == 500


# --- lifecycle and process ----------------------------------------------------------------


def test_server_refuses_non_loopback_and_stops_cleanly() -> None:
    with pytest.raises(ValueError):
        TraServer(host="0.0.0.0")
    with TraServer() as srv:
        c = Client(srv)
        c.build()  # leaves an idle keep-alive connection open
        port = srv.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


def test_module_runs_as_a_process(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    cmd = [sys.executable, "-m", "behave_bstack.emulator", "--user", "u", "--key", "k"]
    proc = subprocess.Popen(
        [*cmd, "--port-file", str(port_file), "--latency-ms", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.fullmatch(r"TRA emulator listening on http://127\.0\.0\.1:(\d+) \(user=u\)\n", line)
        assert m, line
        port = int(m.group(1))
        assert port_file.read_text().strip() == str(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        auth = "Basic " + base64.b64encode(b"u:k").decode()
        headers = {"Authorization": auth, "Content-Type": "application/json"}
        conn.request("POST", "/ext/v1/builds/start", json.dumps(bstart()), headers)
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

    bad = subprocess.run(
        [*cmd, "--host", "10.1.2.3"], cwd=REPO, capture_output=True, text=True, timeout=20
    )
    assert bad.returncode == 2 and "loopback" in bad.stderr
