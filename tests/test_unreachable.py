"""An API that cannot be reached (issue #17, item 2): nothing has ever answered and every
attempt fails to connect.  behave must not wait out its flush deadline, and the one line it
prints names what failed and how to send the journal later; `status` and `upload` name the
same cause.

Real behave runs (subprocesses) against loopback addresses only: a closed port (connection
refused), a listener whose accept queue is full (the kernel drops the SYNs, as a firewall
that drops packets does).  A name that does not resolve is tested on the engine with the
resolver replaced, so that no query leaves the machine.
"""

from __future__ import annotations

import io
import socket
import time
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.command import main as cli
from behave_bstack.delivery.dispatch import UNREACHABLE_AFTER, Delivery
from behave_bstack.delivery.transport import Transport
from behave_bstack.emulator import TraServer
from behave_bstack.journal import store as journal

FLUSH = "30"  # the default flush deadline: the run must end long before it


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return fk.free_port()


class DroppingListener:
    """A loopback port whose accept queue is full and never drained: a connection attempt
    gets no answer at all (the kernel drops the SYN), like a firewall that drops packets."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        while True:  # fill the queue until an attempt hangs
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", self.port))
            except OSError:
                probe.close()
                break
            self.held.append(probe)
            assert len(self.held) < 50, "the accept queue never filled"

    def close(self) -> None:
        for sock in self.held:
            sock.close()
        self.listener.close()


@pytest.fixture
def dropping():
    listener = DroppingListener()
    yield listener
    listener.close()


def unreachable_env(root: Path, url: str, **extra: str) -> dict[str, str]:
    return {
        "BROWSERSTACK_USERNAME": "u_unreach",
        "BROWSERSTACK_ACCESS_KEY": "k_unreach_secret",
        "BROWSERSTACK_API_URL": url,
        "BSTACK_JOURNAL_DIR": str(root / "journal"),
        "BSTACK_FLUSH_TIMEOUT": FLUSH,
        **extra,
    }


def ours(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("behave-bstack")]


def run_cli(root: Path, *argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err, environ=env, cwd=str(root))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("kind", ["refused", "dropped"])
def test_unreachable_api_gives_up_early_with_one_line(tmp_path, kind, request):
    if kind == "refused":
        port, cause = closed_port(), "connection refused"
    else:
        port, cause = request.getfixturevalue("dropping").port, "no connection"
    root = fk.write_suite(tmp_path, 6, failing={2})
    env = unreachable_env(root, f"http://127.0.0.1:{port}")
    run = fk.run_behave(root, env)

    assert run.returncode == fk.null_rc(root) == 1
    # Well under the 30 s deadline: UNREACHABLE_AFTER after the first attempt, plus a
    # refused connection's last retry (or a dropped one's connect timeout) and start-up.
    assert run.seconds < UNREACHABLE_AFTER + 8, f"behave waited {run.seconds:.1f} s"
    lines = ours(run.stderr)
    assert len(lines) == 1, run.stderr
    line = lines[0]
    run_dir = fk.only_run_dir(root / "journal")
    assert f"127.0.0.1:{port}" in line and cause in line, line
    assert "cannot reach the API" in line
    assert f"behave-bstack upload {run_dir}" in line
    assert "6 tests" in line
    assert "k_unreach_secret" not in run.stderr + run.stdout
    report = journal.read_report(run_dir)
    assert report["stop_kind"] == "unreachable" and report["pending"] > 0

    # status names the same cause, and says the work is pending (exit 1).
    code, out, _ = run_cli(root, "status", env=env)
    assert code == 1
    assert cause in out and f"127.0.0.1:{port}" in out, out

    # upload: the same cause, in a few seconds; it does not claim an uploaded journal.
    began = time.monotonic()
    code, out, err = run_cli(root, "upload", "--timeout", "60", env=env)
    assert time.monotonic() - began < UNREACHABLE_AFTER + 8
    assert code == 1
    assert cause in err and f"127.0.0.1:{port}" in err, err
    assert "1 journal uploaded" not in out and "0 calls delivered" in out, out
    assert "k_unreach_secret" not in out + err


def test_unreachable_then_up_upload_delivers_everything(tmp_path):
    """The journal a run left behind is complete: once the API is up, upload sends it."""
    root = fk.write_suite(tmp_path, 4)
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        port = srv.port
    # The server is gone now: its port refuses.
    env = fk.bstack_env(srv, root / "journal", BSTACK_FLUSH_TIMEOUT=FLUSH)
    run = fk.run_behave(root, env)
    assert run.returncode == 0 and run.seconds < UNREACHABLE_AFTER + 8
    assert f"127.0.0.1:{port}" in run.stderr
    run_dir = fk.only_run_dir(root / "journal")
    with TraServer(username="fk_user", access_key="fk_key") as srv2:
        report = fk.deliver(run_dir, fk.options_for(srv2))
        assert report["pending"] == 0 and report["stopped"] is None
        fk.assert_exactly_once(srv2, run_dir, min_tests=4)


def test_a_server_that_answered_once_is_not_unreachable(tmp_path):
    """The API answered, then went away: delivery keeps retrying to the flush deadline
    (here 8 s, above UNREACHABLE_AFTER) instead of giving up early."""
    root = fk.write_suite(tmp_path, 20)
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        env = fk.bstack_env(
            srv, root / "journal", FAULTKIT_STEP_SLEEP="0.05", BSTACK_FLUSH_TIMEOUT="8"
        )
        behave = fk.Spawned(root, env)
        try:
            fk.wait_for(lambda: len(srv.state.tests) >= 2, timeout=20)
            srv.faults.downtime(True, mode="refuse")
            rc = behave.wait(timeout=60)
        finally:
            behave.kill()
    assert rc == 0
    assert time.monotonic() - behave.began >= 8
    report = journal.read_report(fk.only_run_dir(root / "journal"))
    assert report["stop_kind"] != "unreachable" and report["answered"] is True
    assert "still pending" in behave.stderr()


def test_a_name_that_does_not_resolve(tmp_path, monkeypatch):
    """DNS failure, on the engine: the resolver is replaced (no query leaves the machine)."""

    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    run_dir = fk.write_journal(tmp_path / "journal" / "run1", tests=2)
    transport = Transport("https://api.nowhere.invalid", "u", "k", timeout=15)
    delivery = Delivery(run_dir, transport, max_attempts=50)
    began = time.monotonic()
    delivery.load_new()
    delivery.run_until(time.monotonic() + 60)
    delivery.shutdown()
    took = time.monotonic() - began
    assert UNREACHABLE_AFTER <= took < UNREACHABLE_AFTER + 3, took
    report = delivery.report()
    assert report["stop_kind"] == "unreachable"
    assert "cannot resolve api.nowhere.invalid" in report["stopped"]
    assert "https://api.nowhere.invalid:443" in report["stopped"]


def test_an_unreachable_proxy_is_named(tmp_path):
    """Through a proxy that refuses (a closed loopback port: nothing leaves the machine),
    the reason names the API host and the proxy."""
    port = closed_port()
    run_dir = fk.write_journal(tmp_path / "journal" / "run1", tests=1)
    transport = Transport(
        "https://api-automation.browserstack.com",
        "u",
        "k",
        timeout=15,
        https_proxy=f"http://127.0.0.1:{port}",
        no_proxy="",
    )
    delivery = Delivery(run_dir, transport)
    delivery.load_new()
    delivery.run_until(time.monotonic() + 60)
    delivery.shutdown()
    report = delivery.report()
    assert report["stop_kind"] == "unreachable", report
    assert report["stopped"] == (
        "cannot reach the API: connection refused by "
        f"https://api-automation.browserstack.com:443 via proxy 127.0.0.1:{port}"
    )
