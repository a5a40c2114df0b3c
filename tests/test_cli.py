"""The behave-bstack command, run as `python -m behave_bstack` against a TraServer started here.

One real behave run (offline: no credentials) makes the journal; each test works on its own
copy of it.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from behave_bstack.command import main as cli
from behave_bstack.delivery.routes import ROUTES
from behave_bstack.emulator import TraServer
from behave_bstack.journal import store as journal
from behave_bstack.origin import host

REPO = Path(__file__).resolve().parents[1]
USER = "cli_user"
KEY = "Sekr3t-Access-Key-4242"  # must never appear in any output
COMMANDS = (
    [],
    ["upload"],
    ["status"],
    ["show"],
    ["doctor"],
    ["build"],
    ["build", "start"],
    ["build", "finish"],
    ["serve"],
)


def clean_env(home: Path) -> dict[str, str]:
    """The test process's environment without anything that configures reporting."""
    drop = ("BROWSERSTACK_", "BSTACK_", "CUSTOM_TAG_")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(drop) and k.lower() not in ("http_proxy", "https_proxy", "no_proxy")
    }
    env["HOME"] = str(home)  # no ~/behave.ini of the machine's
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# behave 1.2.6 cannot parse Rule:, so its runs leave rules.feature out.
NO_RULES = ["--exclude", "rules.feature"] if host.behave_version().startswith("1.2") else []


@pytest.fixture(scope="module")
def server():
    with TraServer(username=USER, access_key=KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def offline_journals(tmp_path_factory) -> Path:
    """The journal directory of one real, offline behave run of this repository's features."""
    work = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "features", work / "features")
    env = clean_env(work)
    env["BSTACK_JOURNAL_DIR"] = str(work / "journal")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "behave",
            "-f",
            "behave_bstack:BstackFormatter",
            *NO_RULES,
            "features",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "nothing sent" in proc.stderr, proc.stderr
    assert len(list(journal.run_directories(work / "journal"))) == 1
    return work / "journal"


class Project:
    """A working directory with its own copy of the journal, and a way to run the CLI."""

    def __init__(self, root: Path, journals: Path, server: TraServer) -> None:
        self.root = root
        self.journals = root / "journal"
        shutil.copytree(journals, self.journals)
        self.run_dir = next(journal.run_directories(self.journals))
        self.server = server
        self.env = clean_env(root)
        self.env["BSTACK_JOURNAL_DIR"] = str(self.journals)
        self.env["BROWSERSTACK_API_URL"] = server.url

    def credentials(self, key: str = KEY) -> Project:
        self.env.update(BROWSERSTACK_USERNAME=USER, BROWSERSTACK_ACCESS_KEY=key)
        return self

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, "-m", "behave_bstack", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert KEY not in proc.stdout + proc.stderr
        return proc

    def events(self) -> list[dict]:
        return journal.read_events(self.run_dir / journal.EVENTS)

    def journaled(self, op: str) -> list[dict]:
        return [e for e in self.events() if e["op"] == op]


@pytest.fixture
def project(tmp_path, offline_journals, server) -> Project:
    server.reset()
    return Project(tmp_path, offline_journals, server)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


# --------------------------------------------------------------------------- upload / status


def test_upload_delivers_an_offline_journal_exactly_once(project):
    tests = project.journaled("test_start")
    hooks = project.journaled("hook_start")
    calls = len([e for e in project.events() if e["op"] in ROUTES])
    assert len(tests) > 10 and hooks

    before = project.run("status")
    assert before.returncode == 1  # everything is pending
    assert f"{len(tests)} tests" in before.stdout
    assert f"0/{calls} calls acknowledged" in before.stdout
    assert f"{calls} pending" in before.stdout and "; ended" in before.stdout

    up = project.credentials().run("upload")
    assert up.returncode == 0, up.stdout + up.stderr
    state = project.server.state
    (build_id,) = state.builds
    assert f"tests {len(tests)}/{len(tests)}" in up.stdout
    assert f"{calls} calls delivered, 0 refused, 0 pending" in up.stdout
    assert build_id in up.stdout
    received = state.tests_in(build_id)
    assert sorted(t.start["name"] for t in received) == sorted(t["body"]["name"] for t in tests)
    assert all(t.finish_count == 1 for t in received)
    assert len(state.hooks_in(build_id)) == len(hooks)
    assert all(h.finish_count == 1 for h in state.hooks_in(build_id))
    assert state.build(build_id).finish_count == 1
    entries = sum(len(e["body"]["logs"]) for e in project.journaled("logs"))
    assert len(state.logs_in(build_id)) == entries

    sent = len(project.server.calls)
    again = project.run("upload")
    assert again.returncode == 0
    assert "nothing to upload" in again.stdout
    assert len(project.server.calls) == sent  # nothing was sent twice

    after = project.run("status")
    assert after.returncode == 0
    assert f"{calls}/{calls} calls acknowledged, 0 refused, 0 pending" in after.stdout
    assert f"builds/{build_id}" in after.stdout

    as_json = json.loads(project.run("status", "--json").stdout)
    assert as_json[0]["build_hashed_id"] == build_id and as_json[0]["needs_upload"] is False


def test_upload_with_wrong_credentials_exits_3_and_keeps_the_journal(project):
    events_before = (project.run_dir / journal.EVENTS).read_bytes()
    up = project.credentials("not-the-key").run("upload")
    assert up.returncode == 3, up.stdout + up.stderr
    assert "refused the credentials" in one_line(up.stderr)
    assert "not-the-key" not in up.stdout + up.stderr
    assert not project.server.state.builds
    assert (project.run_dir / journal.EVENTS).read_bytes() == events_before
    assert not any(a.get("ok") for a in journal.load_acks(project.run_dir).values())
    status = project.run("status")
    assert "0 refused" in status.stdout and "last delivery stopped" in status.stdout

    # The journal is intact: the right key delivers it all.
    assert project.credentials().run("upload").returncode == 0
    (build_id,) = project.server.state.builds
    assert len(project.server.state.tests_in(build_id)) == len(project.journaled("test_start"))


def test_upload_without_credentials_names_the_variables(project):
    up = project.run("upload")
    assert up.returncode == 2
    line = one_line(up.stderr)
    assert "BROWSERSTACK_USERNAME" in line and "BROWSERSTACK_ACCESS_KEY" in line
    assert "Traceback" not in up.stderr and not project.server.calls


def test_upload_skips_a_journal_another_process_delivers(project):
    lock = journal.try_lock(project.run_dir)
    try:
        up = project.credentials().run("upload")
    finally:
        lock.close()
    assert up.returncode == 1
    assert "another process is delivering it" in up.stdout
    assert not project.server.calls


def test_upload_closes_a_run_that_behave_left_open(project):
    # A behave killed in the middle of a scenario: the journal ends after a test start.
    events = project.events()
    cut = next(i for i, e in enumerate(events) if e["op"] == "test_start" and i > len(events) // 2)
    lines = (project.run_dir / journal.EVENTS).read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["seq"] <= events[cut]["seq"]]
    (project.run_dir / journal.EVENTS).write_bytes(b"".join(kept))
    open_test = events[cut]["body"]["name"]

    assert "interrupted" in project.run("status").stdout
    up = project.credentials().run("upload")
    assert up.returncode == 0, up.stdout + up.stderr
    (build_id,) = project.server.state.builds
    received = project.server.state.tests_in(build_id)  # concurrent: any order
    assert len(received) == len(project.journaled("test_start"))
    (last,) = [t for t in received if t.start["name"] == open_test]
    assert last.finish["result"] == "failed"
    assert "Interrupted" in last.finish["failure"][0]["backtrace"][0]
    assert project.server.state.build(build_id).finish_count == 1


# --------------------------------------------------------------------------- show


def test_show_prints_the_run_as_a_tree_without_an_account(project):
    proc = project.run("show")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "build: not created yet" in out
    assert "  hook before_all: passed" in out  # build level
    assert "\n  Feature: Checkout\n" in out
    if not NO_RULES:
        assert "\n    Rule: Guests earn nothing\n" in out
    for test in project.journaled("test_start"):
        assert f"Scenario: {test['body']['name']} - " in out
    assert "Scenario: A deliberately wrong total - FAILED" in out
    assert "Then the cart total is 9.99 - FAILED" in out
    assert "! AssertionError: expected total 9.99, got 2.25" in out
    assert "When I pay with a gift voucher - FAILED" in out
    assert "And the cart holds 1 items - skipped" in out
    assert "Given an empty cart - passed (0 ms)" in out
    assert "Failures (3):" in out
    # a scenario's hooks sit under it, indented deeper than the scenario
    scenario = out.index("Scenario: An empty cart costs nothing")
    assert out.index("      hook before_scenario: An empty cart costs nothing", scenario)
    # by run id, and by path
    by_id = project.run("show", project.run_dir.name)
    assert by_id.stdout == out
    assert project.run("show", str(project.run_dir)).stdout == out


def test_show_of_a_missing_journal_is_one_line(project):
    proc = project.run("show", "no-such-run")
    assert proc.returncode == 2
    assert "no journal at no-such-run" in one_line(proc.stderr)


# --------------------------------------------------------------------------- doctor


def test_doctor_without_credentials(project):
    proc = project.run("doctor")
    assert proc.returncode == 1
    assert "credentials: MISSING" in proc.stdout and "BROWSERSTACK_ACCESS_KEY" in proc.stdout
    assert "ok    TCP" in proc.stdout  # the emulator is reachable
    assert "api_url" in proc.stdout and "env BROWSERSTACK_API_URL" in proc.stdout
    assert not project.server.calls


def test_doctor_with_credentials_never_prints_the_key(project):
    proc = project.credentials().run("doctor", "--debug")
    assert proc.returncode == 0, proc.stdout
    assert f"set ({len(KEY)} chars)" in proc.stdout
    assert "result: ready to report" in proc.stdout
    assert not project.server.calls  # creates nothing without --live
    # the key given as -D is hidden as well
    as_define = project.run(
        "doctor", "-D", f"bstack.access_key={KEY}", "-D", f"bstack.username={USER}"
    )
    assert as_define.returncode == 0 and "userdata bstack.access_key" in as_define.stdout


def test_doctor_live_opens_a_tiny_build(project):
    proc = project.credentials().run("doctor", "--live")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (build_id,) = project.server.state.builds
    assert f"builds/{build_id}" in proc.stdout
    build = project.server.state.build(build_id)
    assert build.start["name"] == cli.DOCTOR_BUILD and build.finish_count == 1
    (test,) = project.server.state.tests_in(build_id)
    assert test.finish["result"] == "passed"

    refused = project.credentials("wrong-key-0000").run("doctor", "--live")
    assert refused.returncode == 3
    assert "live check: FAIL" in refused.stdout and "wrong-key-0000" not in refused.stdout


def test_doctor_names_the_proxy_setting_when_the_proxy_wants_a_password(project):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def proxy() -> None:  # answers every CONNECT with 407
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=proxy, daemon=True)
    thread.start()
    try:
        proc = project.credentials().run(
            "doctor",
            env={
                "BROWSERSTACK_API_URL": "https://api.example.test",
                "HTTPS_PROXY": f"http://127.0.0.1:{port}",
            },
        )
    finally:
        thread.join(5)
        listener.close()
    assert proc.returncode == 1
    assert "FAIL  tunnel" in proc.stdout and "(407)" in proc.stdout
    assert "https_proxy (env HTTPS_PROXY)" in proc.stdout


# --------------------------------------------------------------------------- build


def test_build_start_and_finish(project):
    project.credentials()
    start = project.run("build", "start", "--name", "shared build", "--run-identifier", "r-1")
    assert start.returncode == 0, start.stderr
    line = one_line(start.stdout)
    assert line.startswith("export BROWSERSTACK_BUILD_HASHED_ID=")
    build_id = line.split("=", 1)[1]
    body = project.server.state.build(build_id).start
    assert body["name"] == "shared build" and body["build_run_identifier"] == "r-1"
    assert body["framework"]["name"] == "behave" and body["started_at"].endswith("Z")

    finish = project.run("build", "finish", env={"BROWSERSTACK_BUILD_HASHED_ID": build_id})
    assert finish.returncode == 0, finish.stderr
    assert project.server.state.build(build_id).finish_count == 1

    as_json = json.loads(project.run("build", "start", "--json").stdout)
    assert as_json["build_hashed_id"] in project.server.state.builds
    assert project.run("build", "finish").returncode == 2  # which build?


# --------------------------------------------------------------------------- serve, help, errors


def test_serve_prints_the_exports_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "behave_bstack", "serve", "--user", "u1", "--key", "k1"],
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]
        exports = dict(line.split(" ", 1)[1].strip().split("=", 1) for line in lines[1:])
        url = exports["BROWSERSTACK_API_URL"]
        assert exports["BROWSERSTACK_USERNAME"] == "u1"
        conn = http.client.HTTPConnection(url.split("//")[1], timeout=5)
        auth = "Basic " + base64.b64encode(b"u1:k1").decode()
        body = {"name": "b", "project_name": "p", "started_at": "2025-11-11T10:30:05.123Z"}
        conn.request(
            "POST",
            "/ext/v1/builds/start",
            json.dumps(body),
            {"Authorization": auth, "Content-Type": "application/json"},
        )
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "received 1 build," in err


def _serve(tmp_path, *extra: str) -> tuple[subprocess.Popen, str, list[str]]:
    """`behave-bstack serve` in a process: (process, its URL, the lines it printed first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "behave_bstack", "serve", *extra],
        env=clean_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    head = [proc.stdout.readline() for _ in range(5)]
    url = head[1].strip().split("=", 1)[1]
    return proc, url, head


def _build_start(url: str, name: str = "b", key: bytes = b"bs_user:bs_key") -> int:
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=5)
    body = {"name": name, "project_name": "p", "started_at": "2025-11-11T10:30:05.123Z"}
    auth = "Basic " + base64.b64encode(key).decode()
    conn.request(
        "POST",
        "/ext/v1/builds/start",
        json.dumps(body),
        {"Authorization": auth, "Content-Type": "application/json"},
    )
    status = conn.getresponse().status
    conn.close()
    return status


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    return out, err


def test_serve_prints_a_line_per_call_and_where_to_look(tmp_path):
    proc, url, head = _serve(tmp_path)
    try:
        assert head[4] == f"# what it receives: {url}/ in a browser, or {url}/_emulator/state\n"
        assert _build_start(url, "nightly") == 200
        assert proc.stdout.readline().startswith("# one line per call follows")
        line = proc.stdout.readline()
        assert " 200 build_start  build " in line and line.endswith('"nightly"\n')
        assert _build_start(url, key=b"bs_user:wrong") == 401
        line = proc.stdout.readline()
        assert " 401 build_start " in line and "wrong or missing credentials" in line
        conn = http.client.HTTPConnection(url.split("//")[1], timeout=5)
        conn.request("GET", "/")
        page = conn.getresponse()
        assert page.status == 200 and b"Builds received" in page.read()
        conn.close()
    finally:
        out, err = _stop(proc)
    assert out == ""  # the page view printed no line: it is no API call
    assert "received 1 build," in err


def test_serve_quiet_prints_no_call_lines(tmp_path):
    proc, url, head = _serve(tmp_path, "--quiet")
    try:
        assert _build_start(url) == 200
    finally:
        out, err = _stop(proc)
    assert "/_emulator/state" in head[4] and out == ""
    assert "received 1 build," in err


def test_help_of_every_command(capsys):
    for args in COMMANDS:
        assert cli.main([*args, "--help"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: behave-bstack"), args
        assert "exit codes:" in out and "3  BrowserStack refused the credentials" in out, args
    proc = subprocess.run(
        [sys.executable, "-m", "behave_bstack", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "upload" in proc.stdout and "doctor" in proc.stdout


@pytest.mark.parametrize(
    "args", [["upload", "--timeout", "soon"], ["frobnicate"], [], ["build"], ["status", "-x"]]
)
def test_usage_errors_are_one_line(args, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(args, stdout=out, stderr=err, environ={}, cwd=str(tmp_path))
    assert code == 2
    assert one_line(err.getvalue()).startswith("behave-bstack")
    assert "Traceback" not in err.getvalue()


def test_debug_traceback_hides_the_key(monkeypatch, tmp_path):
    def broken(ctx):
        raise RuntimeError(f"boom {ctx.settings.access_key}")

    monkeypatch.setattr(cli, "cmd_status", broken)
    env = {"BROWSERSTACK_USERNAME": USER, "BROWSERSTACK_ACCESS_KEY": KEY}
    for debug in ([], ["--debug"]):
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["status", *debug], stdout=out, stderr=err, environ=env, cwd=str(tmp_path))
        assert code == 1
        assert KEY not in err.getvalue() and "boom ****" in err.getvalue()
        assert ("Traceback" in err.getvalue()) == bool(debug)
        if not debug:
            one_line(err.getvalue())


def test_settings_come_from_behaves_config_files_too(tmp_path):
    (tmp_path / "setup.cfg").write_text("[behave.userdata]\nbstack.project_name = from-cfg\n")
    assert cli.behave_userdata(str(tmp_path), home=str(tmp_path / "none")) == {
        "bstack.project_name": "from-cfg"
    }
    # behave lets a later file (behave.ini) replace the whole userdata table
    (tmp_path / "behave.ini").write_text("[behave]\n")
    assert cli.behave_userdata(str(tmp_path), home=str(tmp_path / "none")) == {}
    out = io.StringIO()
    (tmp_path / "behave.ini").write_text("[behave.userdata]\nbstack.project_name = from-ini\n")
    env = {"BROWSERSTACK_API_URL": "http://127.0.0.1:1", "HOME": str(tmp_path / "none")}
    cli.main(["doctor"], stdout=out, stderr=io.StringIO(), environ=env, cwd=str(tmp_path))
    assert "from-ini" in out.getvalue() and "userdata bstack.project_name" in out.getvalue()
