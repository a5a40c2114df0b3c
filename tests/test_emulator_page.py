"""The local server as a tool to look at: a line per call, its pages, and where links point.

Real HTTP on loopback against a started TraServer; the pages are read as the HTML a
browser gets (tests/test_emulator_browser.py loads them in Chromium).
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import threading
import time
from html.parser import HTMLParser

import pytest
from helpers import DEMO_ARGS, FORMATTER

from behave_bstack.command import main as cli
from behave_bstack.delivery.routes import build_url
from behave_bstack.emulator import TraServer
from behave_bstack.emulator.call_line import call_line
from behave_bstack.journal import store as journal

AUTH = "Basic " + base64.b64encode(b"bs_user:bs_key").decode()
T0 = "2025-11-11T10:30:05.123Z"


class Http:
    """One kept-alive connection; `close=True` asks the server to close it after a call."""

    def __init__(self, srv: TraServer) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)

    def call(self, method, path, body=None, auth=AUTH, close=False):
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = auth
        if close:
            headers["Connection"] = "close"
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, data, headers)
        resp = self.conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()

    def get(self, path):
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()

    def close(self):
        self.conn.close()


@pytest.fixture
def srv():
    with TraServer() as server:
        yield server


@pytest.fixture
def http_(srv):
    client = Http(srv)
    yield client
    client.close()


def a_build(client: Http, name="nightly") -> str:
    body = {"name": name, "project_name": "shop", "started_at": T0}
    status, _, data = client.call("POST", "/ext/v1/builds/start", body)
    assert status == 200, data
    return json.loads(data)["build_hashed_id"]


def a_test(client: Http, build: str, name: str, scopes=("Checkout",)) -> str:
    body = {"name": name, "file_name": "f.feature", "scopes": list(scopes), "started_at": T0}
    status, _, data = client.call("POST", f"/ext/v1/builds/{build}/tests/start", body)
    assert status == 200, data
    return json.loads(data)["uuid"]


def finish(client: Http, build: str, test: str, result="passed", **extra):
    body = {"result": result, "finished_at": T0, "file_name": "f.feature", "scopes": ["Checkout"]}
    body.update(extra)
    return client.call("PUT", f"/ext/v1/builds/{build}/tests/{test}/finish", body)


# --------------------------------------------------------------------------- a line per call


class Lines:
    def __init__(self, srv: TraServer) -> None:
        self.lines: list[str] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.srv = srv

    def __call__(self, call) -> None:
        with self.lock:
            self.lines.append(call_line(call, self.srv.state))
            self.threads.add(threading.current_thread().name)


def test_no_line_hook_by_default(srv):
    assert srv.on_call is None  # library use (tests, the benchmark) pays nothing


def test_a_line_per_call_from_the_reactor_and_from_handler_threads(srv, http_):
    lines = Lines(srv)
    srv.on_call = lines
    build = a_build(http_)
    test = a_test(http_, build, "Paying with a gift voucher")
    finish(http_, build, test, "failed")
    # refused calls say why: the validator's message and a cross-call rule's
    http_.call("POST", f"/ext/v1/builds/{build}/tests/start", {"name": "x"})
    http_.call("PUT", f"/ext/v1/builds/{build}/tests/nope/finish", {})
    finish(http_, build, "0" * 36)
    http_.call("POST", "/ext/v1/builds/start", {}, auth=None)
    # a call the reactor does not serve (Connection: close): the handler thread's line
    other = Http(srv)
    other.call("POST", f"/ext/v1/builds/{build}/logs", {"logs": []}, close=True)
    other.close()
    # The handler thread may write its line just after its answer went out: wait for it,
    # so that the lines come in the order of the calls.
    deadline = time.monotonic() + 5
    while len(lines.lines) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.faults.fail(503, count=1, op="build_finish")
    http_.call("PUT", f"/ext/v1/builds/{build}/finish", {"finished_at": T0})
    srv.faults.drop(count=1, mode="close", op="build_finish")
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        http_.call("PUT", f"/ext/v1/builds/{build}/finish", {"finished_at": T0})
    assert len(lines.lines) == len(srv.calls) == 10
    short = build[:8]
    first, started, finished, invalid, unknown, missing, unauth, logs, fault, dropped = lines.lines
    assert f' 200 build_start  build {short} "nightly"' in first
    assert f' 200 test_start   build {short} "Paying with a gift voucher"' in started
    assert finished.endswith('failed "Paying with a gift voucher"')
    assert " 422 test_start " in invalid and "file_name: required" in invalid
    assert " 422 test_finish " in unknown  # the body is checked before the id
    assert " 404 test_finish " in missing and "not found in build" in missing
    assert " 401 build_start " in unauth and "credentials" in unauth
    assert " 422 logs " in logs
    assert " 503 build_finish " in fault and "(fault: fail)" in fault
    assert " --- build_finish " in dropped and "(no answer: fault drop)" in dropped
    assert "tra-emulator-reactor" in lines.threads and len(lines.threads) >= 2


def test_a_call_line_keeps_to_one_line_without_control_characters(srv, http_):
    lines = Lines(srv)
    srv.on_call = lines
    build = a_build(http_, name="evil\x1b[2J\nname\u2028" + "x" * 200)
    (line,) = lines.lines
    assert "\x1b" not in line and "\n" not in line and "\u2028" not in line
    assert "\\x1b[2J" in line and len(line) < 260 and build[:8] in line


def test_a_failing_line_hook_does_not_break_the_server(srv, http_, capfd):
    def broken(call):
        raise RuntimeError("printer broke")

    srv.on_call = broken
    assert a_build(http_)
    assert "printer broke" in capfd.readouterr().err


# --------------------------------------------------------------------------- the pages


class Dom(HTMLParser):
    """Elements with their text, enough to find things the way a reader would."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text_parts: list[str] = []
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_data(self, data):
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())


def test_pages_need_no_credentials_and_forbid_scripts(srv, http_):
    build = a_build(http_)
    test = a_test(http_, build, "A deliberately wrong total")
    failure = [{"backtrace": ["AssertionError: expected total 9.99, got 2.25"]}]
    steps = [{"id": "1", "keyword": "Then", "text": "the total is 9.99", "result": "failed"}]
    status, _, _ = finish(http_, build, test, "failed", failure=failure, meta={"steps": steps})
    assert status == 200
    page = Http(srv)
    status, headers, index = page.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none'
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    dom = Dom(index)
    assert "nightly" in dom.text and f"/builds/{build}" in dom.links
    status, _, body = page.get(f"/builds/{build}")
    dom = Dom(body)
    assert status == 200
    assert "Checkout" in dom.text and "A deliberately wrong total" in dom.text
    assert "expected total 9.99, got 2.25" in dom.text and "Then the total is 9.99" in dom.text
    page.close()
    assert len(srv.calls) == 3  # the page views are not API calls


def test_unknown_pages_are_404_html_and_api_routes_are_unchanged(srv, http_):
    page = Http(srv)
    status, headers, body = page.get("/builds/nope")
    assert status == 404 and "No build nope" in Dom(body).text
    status, _, body = page.get("/favicon.ico")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    page.close()
    # GET on an API path is still the API's: credentials first, then 405
    assert http_.call("GET", "/ext/v1/builds/start", auth=None)[0] == 401
    assert http_.call("GET", "/ext/v1/builds/start")[0] == 405
    assert not srv.state.builds and len(srv.calls) == 2


@pytest.mark.parametrize("path", ["/", "/builds/x", "/_emulator/state?calls=1"])
def test_pages_and_control_answer_only_a_loopback_host(srv, http_, path):
    """A site DNS-rebound to 127.0.0.1 makes the browser send its own name as Host."""
    a_build(http_)
    for host, expected in [
        ("evil.example:80", 403),
        ("127.0.0.1.evil.example", 403),
        (f"localhost:{srv.port}", None),
        (f"127.0.0.1:{srv.port}", None),
        ("[::1]", None),
    ]:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if expected:
            assert (resp.status, body) == (expected, b"loopback Host only"), host
        else:
            assert resp.status in (200, 404) and b"loopback Host only" not in body, host
    # the API does not care (credentials guard it), as with TRA behind any name
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.putrequest("POST", "/ext/v1/builds/start", skip_host=True)
    conn.putheader("Host", "evil.example")
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    assert conn.getresponse().status == 401
    conn.close()


def test_everything_a_client_sent_is_escaped(srv, http_):
    evil = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    build = a_build(http_, name=evil)
    test = a_test(http_, build, evil, scopes=(evil, "</section><h1>rule"))
    log = {
        "kind": "TEST_LOG",
        "test_run_uuid": test,
        "timestamp": T0,
        "level": "<b>INFO</b>",
        "message": "</li><script>x()</script>",
    }
    assert http_.call("POST", f"/ext/v1/builds/{build}/logs", {"logs": [log]})[0] == 200
    failure = [{"backtrace": ["</pre><script>y()</script>"]}]
    steps = [{"id": "1", "keyword": "<i>Given", "text": '"><script>', "result": "failed"}]
    finish(http_, build, test, "failed", failure=failure, meta={"steps": steps})
    http_.call("POST", f"/ext/v1/builds/{build}/tests/start", {"name": evil})  # refused: 422
    page = Http(srv)
    for path in ("/", f"/builds/{build}"):
        status, _, body = page.get(path)
        dom = Dom(body)
        assert status == 200
        assert "script" not in dom.tags and "img" not in dom.tags and "i" not in dom.tags
        assert dom.tags.count("h1") == 1
        assert evil in dom.text
    assert "</li><script>x()</script>" in dom.text and "</pre><script>y()</script>" in dom.text
    page.close()


def test_the_index_lists_refused_calls_with_the_reason(srv, http_):
    build = a_build(http_)
    http_.call("POST", f"/ext/v1/builds/{build}/tests/start", {"name": "half a body"})
    page = Http(srv)
    dom = Dom(page.get("/")[2])
    assert "2 API calls received, 1 of them refused" in dom.text
    assert f"POST /ext/v1/builds/{build}/tests/start 422" in dom.text
    assert "file_name: required" in dom.text
    dom = Dom(page.get(f"/builds/{build}")[2])  # the build's own page says so too
    page.close()
    assert "1 call for this build was refused" in dom.text
    assert "file_name: required" in dom.text


def test_a_page_that_cannot_be_drawn_is_a_500_and_the_server_goes_on(srv, http_, monkeypatch):
    from behave_bstack.emulator import page as pages

    def broken(*args):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(pages, "render", broken)
    client = Http(srv)
    status, _, body = client.get("/")
    assert status == 500 and "could not draw" in body
    monkeypatch.undo()
    assert client.get("/")[0] == 200  # the same connection still serves
    client.close()
    assert a_build(http_)


# --------------------------------------------------------------------------- the build link


@pytest.mark.parametrize(
    ("api_url", "expected"),
    [
        (None, "https://automation.browserstack.com/builds/b1"),
        (
            "https://api-automation.browserstack.com",
            "https://automation.browserstack.com/builds/b1",
        ),
        ("https://127.0.0.1.example.com", "https://automation.browserstack.com/builds/b1"),
        ("http://127.0.0.1:40787", "http://127.0.0.1:40787/builds/b1"),
        ("http://127.0.0.1:40787/", "http://127.0.0.1:40787/builds/b1"),
        ("http://localhost:5000", "http://localhost:5000/builds/b1"),
        ("http://[::1]:5000", "http://[::1]:5000/builds/b1"),
        ("http://bs_user:bs_key@127.0.0.1:9", "http://127.0.0.1:9/builds/b1"),
    ],
)
def test_the_build_link_points_at_the_local_server_when_the_api_url_is_loopback(api_url, expected):
    assert build_url("b1", api_url) == expected


def test_a_run_against_the_local_server_links_to_its_page(
    tra_server, shop, reporting_env, run_behave, tmp_path
):
    """The summary and `status` name the local server's page of the build, which exists."""
    run = run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, reporting_env)
    (build,) = tra_server.state.builds
    link = f"{tra_server.url}/builds/{build}"
    assert f"  build: {link}\n" in run.stderr
    assert "automation.browserstack.com" not in run.stderr

    def status() -> str:
        out = io.StringIO()
        cli.main(["status"], stdout=out, stderr=io.StringIO(), environ=reporting_env, cwd=shop)
        return out.getvalue()

    assert f"; build {link}" in status()
    (run_dir,) = journal.run_directories(tmp_path / "journal")
    (run_dir / "report.json").unlink()  # no delivery report: the run's API URL decides
    assert f"; build {link}" in status()

    page = Http(tra_server)
    status_code, _, body = page.get(link.removeprefix(tra_server.url))
    page.close()
    assert status_code == 200 and "A deliberately wrong total" in Dom(body).text


def test_upload_and_the_build_commands_link_to_the_local_page(
    tra_server, shop, reporting_env, run_behave, tmp_path
):
    offline = {k: v for k, v in reporting_env.items() if k != "BROWSERSTACK_ACCESS_KEY"}
    run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, offline)
    assert not tra_server.calls

    def command(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(args), stdout=out, stderr=err, environ=reporting_env, cwd=shop)
        return code, out.getvalue(), err.getvalue()

    code, out, _ = command("upload")
    (build,) = tra_server.state.builds
    link = f"{tra_server.url}/builds/{build}"
    assert code == 0 and f"; build {link}\n" in out
    assert f"; build {link}" in command("status")[1]
    code, out, err = command("build", "start", "--json")
    started = json.loads(out)
    assert started["build_url"] == f"{tra_server.url}/builds/{started['build_hashed_id']}"
    code, out, _ = command("build", "finish", started["build_hashed_id"])
    assert out == f"finished build {started['build_hashed_id']}: {started['build_url']}\n"
    code, out, _ = command("doctor", "--live")
    assert code == 0 and f"{tra_server.url}/builds/" in out
    assert "automation.browserstack.com" not in out
