"""Helpers for the fault, process, secrets, transport and journal tests.

Generates small behave suites, runs behave with the bstack formatter against the TRA
emulator, and compares what the journal says was produced with what the emulator holds,
so that a test can state "everything arrived exactly once" in one call.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from helpers import clean_env, server_env

from behave_bstack.delivery.uploader import deliver_journal
from behave_bstack.journal import store as journal

FORMATTER = "behave_bstack:BstackFormatter"

# --- suites -------------------------------------------------------------------------------

_STEPS = """\
import os
import time
from pathlib import Path

from behave import given, then


@given("step {n:d} passes")
def step_passes(context, n):
    print(f"out-{n}")
    pause = float(os.environ.get("FAULTKIT_STEP_SLEEP", "0"))
    if pause:
        time.sleep(pause)


@then("it fails")
def step_fails(context):
    raise AssertionError("expected failure")


@given("an attachment")
def step_attachment(context):
    import behave_bstack

    behave_bstack.attach(context, b"attached-bytes", name="note.txt")


@given("the run blocks")
def step_blocks(context):
    # Tell the test we got here, then wait to be killed or interrupted.
    Path(os.environ["FAULTKIT_MARKER"]).write_text("step", encoding="utf-8")
    time.sleep(float(os.environ.get("FAULTKIT_BLOCK", "60")))
"""

_ENVIRONMENT = """\
import os
import time
from pathlib import Path


def before_scenario(context, scenario):
    print(f"hook-{scenario.name}")
    if "block_hook" in scenario.tags:
        Path(os.environ["FAULTKIT_MARKER"]).write_text("hook", encoding="utf-8")
        time.sleep(float(os.environ.get("FAULTKIT_BLOCK", "60")))
"""


def scenario_name(index: int) -> str:
    return f"scenario {index:04d}"


def write_suite(
    root: Path,
    scenarios: int = 10,
    *,
    features: int = 1,
    hooks: bool = True,
    failing: Iterable[int] = (),
    block_step: int | None = None,
    block_hook: int | None = None,
    names: dict[int, str] | None = None,
    attach: Iterable[int] = (),
) -> Path:
    """Write root/features with `scenarios` trivial scenarios spread over `features` files.

    Scenario i is called scenario_name(i) (or names[i]) and prints "out-<i>"; those in
    `failing` fail; `block_step`/`block_hook` name the scenario whose step / before_scenario
    hook writes $FAULTKIT_MARKER and then sleeps (so a test can kill behave there).
    With hooks=True a before_scenario hook prints "hook-<name>" for every scenario; the
    scenarios in `attach` attach a small text file.
    Returns root (the directory to run behave in)."""
    failing, attach = set(failing), set(attach)
    names = names or {}
    folder = root / "features"
    (folder / "steps").mkdir(parents=True, exist_ok=True)
    (folder / "steps" / "steps.py").write_text(_STEPS, encoding="utf-8")
    if hooks or block_hook is not None:
        (folder / "environment.py").write_text(_ENVIRONMENT, encoding="utf-8")
    per_feature = max(1, -(-scenarios // features))
    for f in range(features):
        lines = [f"Feature: feature {f:02d}", ""]
        for i in range(f * per_feature, min(scenarios, (f + 1) * per_feature)):
            if i == block_hook:
                lines.append("  @block_hook")
            lines.append(f"  Scenario: {names.get(i, scenario_name(i))}")
            lines.append(f"    Given step {i} passes")
            if i in attach:
                lines.append("    And an attachment")
            if i == block_step:
                lines.append("    And the run blocks")
            if i in failing:
                lines.append("    Then it fails")
            lines.append("")
        (folder / f"f{f:02d}.feature").write_text("\n".join(lines), encoding="utf-8")
    return root


# --- running behave -----------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def bstack_env(server: Any, journal_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a run that reports to `server` and journals in `journal_dir`."""
    return server_env(server, journal_dir, **{"BSTACK_REQUEST_TIMEOUT": "5", **extra})


UMASK = 0o022  # file-mode assertions must not depend on the caller's umask


def behave_cmd(*args: str, formatter: str = FORMATTER) -> list[str]:
    return [sys.executable, "-m", "behave", "-f", formatter, "--no-color", *args]


def run_behave(
    cwd: Path,
    env: dict[str, str] | None = None,
    *args: str,
    formatter: str = FORMATTER,
    timeout: float = 60,
) -> Run:
    """Run behave (a subprocess) in cwd on its features/ directory."""
    began = time.monotonic()
    proc = subprocess.run(
        behave_cmd(*(args or ("features",)), formatter=formatter),
        cwd=str(cwd),
        env=clean_env(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        umask=UMASK,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - began)


def null_rc(cwd: Path, *args: str, timeout: float = 60) -> int:
    """behave's exit code for the same suite without reporting (-f null)."""
    return run_behave(cwd, {}, *args, formatter="null", timeout=timeout).returncode


class Spawned:
    """behave started in the background, output to files (pipes could fill and block)."""

    def __init__(
        self, cwd: Path, env: dict[str, str], *args: str, formatter: str = FORMATTER
    ) -> None:
        tag = "null" if formatter == "null" else "behave"
        self.out_path = Path(cwd) / f"{tag}.out"
        self.err_path = Path(cwd) / f"{tag}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                behave_cmd(*(args or ("features",)), formatter=formatter),
                cwd=str(cwd),
                env=clean_env(env),
                stdout=out,
                stderr=err,
                umask=UMASK,
            )
        self.began = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.02) -> Any:
    """Poll until predicate() is truthy; returns its value or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def uploader_pids(run_dir: Path) -> list[int]:
    """Processes running `behave_bstack.delivery.uploader <run_dir>` (found through /proc)."""
    found = []
    needle = str(run_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"behave_bstack.delivery.uploader" in argv and needle in argv:
            found.append(int(entry.name))
    return found


def pid_gone(pid: int) -> bool:
    """True once every thread of pid has exited (a zombie counts as gone).  The main
    thread turns zombie before the other threads have released the files (and locks)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def kill_pid(pid: int, signum: int = signal.SIGKILL) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# --- the journal --------------------------------------------------------------------------


def run_dirs(journal_dir: Path) -> list[Path]:
    return list(journal.run_directories(Path(journal_dir)))


def only_run_dir(journal_dir: Path) -> Path:
    dirs = run_dirs(journal_dir)
    assert len(dirs) == 1, f"expected one run directory in {journal_dir}, got {dirs}"
    return dirs[0]


def events(run_dir: Path) -> list[dict]:
    return journal.read_events(Path(run_dir) / journal.EVENTS)


def acks(run_dir: Path) -> list[dict]:
    return journal.read_all(Path(run_dir) / journal.ACKS)


def all_acked(run_dir: Path) -> bool:
    """Every API call journaled so far has been answered (acknowledged or refused)."""
    answered = {a["seq"] for a in acks(run_dir)}
    calls = [e["seq"] for e in events(run_dir) if e.get("op") not in ("meta", "end")]
    return bool(calls) and all(seq in answered for seq in calls)


@dataclass
class Expected:
    """What a journal says the run produced, keyed by names (ids differ per delivery)."""

    tests: Counter = field(default_factory=Counter)  # test name -> starts
    hooks: Counter = field(default_factory=Counter)  # hook name -> starts
    logs: Counter = field(default_factory=Counter)  # (owner name, message) -> entries
    steps: dict[str, list] = field(default_factory=dict)  # test name -> [(keyword, text, result)]
    results: dict[str, str] = field(default_factory=dict)  # test name -> result


def expected_from(run_dir: Path) -> Expected:
    exp = Expected()
    names: dict[str, str] = {}
    for event in events(run_dir):
        op, body, ref = event.get("op"), event.get("body") or {}, event.get("ref")
        if op == "test_start":
            names[ref] = body["name"]
            exp.tests[body["name"]] += 1
        elif op == "hook_start":
            names[ref] = body["name"]
            exp.hooks[body["name"]] += 1
        elif op == "test_finish":
            steps = (body.get("meta") or {}).get("steps") or []
            exp.steps[names[ref]] = [(s["keyword"], s["text"], s["result"]) for s in steps]
            exp.results[names[ref]] = body["result"]
        elif op == "logs":
            for entry in body["logs"]:
                link = entry.get("test_run_uuid") or entry.get("hook_run_uuid")
                owner = names.get(link["$ref"]) if isinstance(link, dict) else None
                exp.logs[(owner, entry.get("message"))] += 1
    return exp


# --- what the server holds ----------------------------------------------------------------


def only_build(server: Any) -> Any:
    builds = list(server.state.builds.values())
    assert len(builds) == 1, f"expected one build, got {len(builds)}"
    return builds[0]


def server_logs(server: Any, build_id: str) -> Counter:
    tests, hooks = server.state.tests, server.state.hooks
    found: Counter = Counter()
    for record in server.state.logs_in(build_id):
        entry = record.entry
        if "test_run_uuid" in entry:
            owner = tests[entry["test_run_uuid"]].start["name"]
        else:
            owner = hooks[entry["hook_run_uuid"]].start["name"]
        found[(owner, entry.get("message"))] += 1
    return found


def accepted_calls(server: Any) -> list:
    """Calls the server processed and answered 200, in arrival order."""
    return sorted((c for c in server.calls if c.status == 200), key=lambda c: c.seq)


def assert_exactly_once(
    server: Any, run_dir: Path, *, min_tests: int = 1, build_id: str | None = None
) -> Expected:
    """Everything run_dir's journal holds is on the server exactly once: one build (or the
    build `build_id`), finished once and last; each test, hook and log entry once; every
    run finished once."""
    exp = expected_from(run_dir)
    assert sum(exp.tests.values()) >= min_tests, "the journal holds fewer tests than expected"
    build = only_build(server) if build_id is None else server.state.build(build_id)
    assert build.finish_count == 1, f"build finished {build.finish_count} times"
    ok = [c for c in accepted_calls(server) if c.build_id == build.id]
    assert ok[0].op == "build_start", ok[0].op
    assert ok[-1].op == "build_finish", f"last accepted call is {ok[-1].op}"
    tests = server.state.tests_in(build.id)
    hooks = server.state.hooks_in(build.id)
    assert Counter(t.start["name"] for t in tests) == exp.tests
    assert Counter(h.start["name"] for h in hooks) == exp.hooks
    unfinished = [r.start["name"] for r in tests + hooks if r.finish_count != 1]
    assert not unfinished, f"runs not finished exactly once: {unfinished[:5]}"
    assert server_logs(server, build.id) == exp.logs
    for test in tests:
        steps = (test.finish.get("meta") or {}).get("steps") or []
        got = [(s["keyword"], s["text"], s["result"]) for s in steps]
        assert got == exp.steps[test.start["name"]], test.start["name"]
        assert test.finish["result"] == exp.results[test.start["name"]]
    return exp


# --- delivering a journal later ------------------------------------------------------------


def options_for(server: Any, **overrides: Any) -> dict:
    options = {
        "api_url": server.url,
        "username": server.username,
        "access_key": server.access_key,
        "request_timeout": 5,
        "concurrency": 8,
    }
    options.update(overrides)
    return options


def lock_holders(run_dir: Path) -> list[str]:
    """Processes with the journal's lock file open (for failure messages)."""
    target = str(Path(run_dir) / journal.LOCK)
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd) == target:
                    cmd = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                    found.append(f"{fd_dir.parent.name}: {cmd.decode(errors='replace')}")
        except OSError:
            continue
    inode = os.stat(target).st_ino
    locks = Path("/proc/locks").read_text().splitlines()
    found += [line for line in locks if line.split()[5].endswith(f":{inode}")]
    return found


def deliver(run_dir: Path, options: dict, timeout: float = 20, **kwargs: Any) -> dict:
    """What `behave-bstack upload` does for one journal: take its lock, deliver it."""
    lock = journal.try_lock(Path(run_dir))
    assert lock is not None, f"someone else holds the journal's lock: {lock_holders(run_dir)}"
    try:
        return deliver_journal(Path(run_dir), options, timeout, **kwargs)
    finally:
        lock.close()


def calls_made(server: Any, action: Callable[[], Any]) -> tuple[Any, int]:
    """(action's result, how many API calls reached the server meanwhile)."""
    before = len(server.calls)
    result = action()
    return result, len(server.calls) - before


# --- small local servers ------------------------------------------------------------------


def make_cert(directory: Path, names: Iterable[str] = ("localhost",)) -> tuple[Path, Path] | None:
    """A self-signed certificate (cert, key) for names + 127.0.0.1 via `openssl`;
    None when openssl is missing or too old for -addext."""
    cert, key = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    san = ",".join([f"DNS:{n}" for n in names] + ["IP:127.0.0.1"])
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(key), "-out", str(cert), "-subj", "/CN=faultkit-test",
                "-addext", f"subjectAltName={san}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return cert, key


class _JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = b'{"success": true, "uuid": "00000000-0000-4000-8000-000000000000"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


class TlsServer:
    """A tiny HTTPS server on 127.0.0.1 that answers every request with a start's JSON."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _JsonHandler)
        self.httpd.daemon_threads = True
        self.httpd.seen = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def seen(self) -> list:
        return self.httpd.seen

    def __enter__(self) -> TlsServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that tunnels every CONNECT to one local
    port, whatever host it names; it records each CONNECT line and can demand
    Proxy-Authorization (answering 407 without the right one)."""

    def __init__(self, target_port: int, require_auth: str | None = None) -> None:
        self.target_port = target_port
        self.require_auth = require_auth
        self.requests: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            self.requests.append(lines[0])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if not lines[0].startswith("CONNECT "):
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.require_auth and headers.get("proxy-authorization") != self.require_auth:
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="faultkit"\r\nContent-Length: 0\r\n\r\n'
                )
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with upstream:
                self._pump(client, upstream)

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        other = threading.Thread(target=copy, args=(b, a), daemon=True)
        other.start()
        copy(a, b)
        other.join(timeout=10)


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_pid() -> int:
    """The pid of a process that has exited (the writer of a journal "that died")."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def write_journal(
    run_dir: Path,
    tests: int = 5,
    *,
    hooks: bool = True,
    logs: bool = True,
    names: dict[int, str] | None = None,
    ended: bool = True,
    build_finish: bool = True,
) -> Path:
    """A journal written the way the tracker writes one, without behave: per test a start,
    a before_scenario hook run linked to it, a test log and a hook log, the finishes."""
    names = names or {}
    writer = journal.JournalWriter(Path(run_dir))
    now = 1_764_000_000_000
    writer.append(
        "meta",
        {
            "hostname": socket.gethostname(),
            "pid": dead_pid(),
            "owns_build": True,
            "build_hashed_id": None,
        },
    )
    writer.append(
        "build_start", {"name": "faultkit", "project_name": "faultkit", "started_at": now}, "build"
    )
    common = {"file_name": "features/f.feature", "scopes": ["feature"]}
    for i in range(tests):
        t, h, name = f"t{i}", f"h{i}", names.get(i, scenario_name(i))
        writer.append("test_start", {"name": name, **common, "started_at": now + i}, t)
        if hooks:
            body = {"hook_type": "before_scenario", "name": f"before_scenario: {name}", **common}
            body.update(started_at=now + i, test_run_id={"$ref": t})
            writer.append("hook_start", body, h)
        if logs:
            entry = {"kind": "TEST_LOG", "timestamp": now + i, "level": "INFO"}
            writer.append(
                "logs", {"logs": [{**entry, "message": f"out-{i}", "test_run_uuid": {"$ref": t}}]}
            )
            if hooks:
                hook_entry = {**entry, "kind": "HOOK_LOG", "message": f"hook-{name}"}
                writer.append("logs", {"logs": [{**hook_entry, "hook_run_uuid": {"$ref": h}}]})
        if hooks:
            body = {"hook_type": "before_scenario", "result": "passed", **common}
            writer.append("hook_finish", {**body, "finished_at": now + i}, h)
        finish = {"result": "passed", **common, "finished_at": now + i + 1}
        finish["meta"] = {
            "steps": [
                {"id": "1", "keyword": "Given", "text": f"step {i} passes", "result": "passed"}
            ]
        }
        if hooks:
            finish["hooks"] = [{"$ref": h}]
        writer.append("test_finish", finish, t)
    if build_finish:
        writer.append("build_finish", {"finished_at": now + tests + 1}, "build")
    if ended:
        writer.append("end")
    writer.close()
    return Path(run_dir)
