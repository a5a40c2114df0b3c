"""The access key never leaks: not to disk, not to the terminal, not into a repr or an
error message, and never over plain http to another machine.  Journal files and
directories are readable by their owner only."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import faultkit as fk
import pytest

from behave_bstack.delivery.transport import Transport, TransportError
from behave_bstack.delivery.uploader import deliver_journal
from behave_bstack.emulator import TraServer
from behave_bstack.settings.config import load_settings

USER = "fk_user"


@pytest.fixture
def key() -> str:
    return "SECRETKEY-" + secrets.token_hex(12)


@pytest.fixture
def srv(key):
    with TraServer(username=USER, access_key=key) as server:
        yield server


def forms(key: str) -> list[bytes]:
    """The ways the key could show up: as is, and inside a Basic Authorization token."""
    token = base64.b64encode(f"{USER}:{key}".encode()).decode()
    return [key.encode(), token.encode(), base64.b64encode(key.encode())]


def assert_absent(key: str, *texts: str, roots: tuple[Path, ...] = ()) -> int:
    """The key is in none of texts nor any file below roots; returns how many files were
    read (so that a test can check it looked at something)."""
    needles = forms(key)
    for text in texts:
        for needle in needles:
            assert needle.decode() not in text
    read = 0
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                read += 1
                for needle in needles:
                    assert needle not in data, f"the access key is in {path}"
    return read


def private_paths(root: Path) -> list[str]:
    """Paths below root (root included) that group or others may access."""
    loose = []
    for path in [root, *Path(root).rglob("*")]:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            loose.append(f"{path.relative_to(root)} {oct(stat.S_IMODE(path.stat().st_mode))}")
    return loose


# --- runs ---------------------------------------------------------------------------------


def test_live_run_keeps_the_key_out_of_everything(srv, key, tmp_path):
    root = fk.write_suite(tmp_path, 6, failing={1}, attach={2})
    env = fk.bstack_env(srv, root / "journal", BSTACK_DEBUG="1")
    srv.faults.fail(503, count=2)  # so that the uploader has something to log
    run = fk.run_behave(root, env)
    run_dir = fk.only_run_dir(root / "journal")
    fk.assert_exactly_once(srv, run_dir, min_tests=6)
    assert "retrying" in (run_dir / "upload.log").read_text()
    assert assert_absent(key, run.stdout, run.stderr, roots=(root,)) >= 6


def test_offline_run_keeps_the_key_out_of_everything(key, tmp_path):
    root = fk.write_suite(tmp_path, 4)
    # A key but no username: nothing can be sent; the run journals offline.
    run = fk.run_behave(
        root,
        {"BROWSERSTACK_ACCESS_KEY": key, "BSTACK_JOURNAL_DIR": str(root / "journal")},
    )
    assert run.returncode == fk.null_rc(root)
    assert "nothing sent" in run.stderr
    run_dir = fk.only_run_dir(root / "journal")
    assert not (run_dir / "upload.lock").exists()  # no uploader was started
    assert assert_absent(key, run.stdout, run.stderr, roots=(root,)) >= 1


def test_refused_credentials_keep_the_key_out_of_everything(key, tmp_path):
    with TraServer(username=USER, access_key="the-right-key") as server:
        root = fk.write_suite(tmp_path, 4)
        env = fk.bstack_env(server, root / "journal", BSTACK_DEBUG="1")
        env["BROWSERSTACK_ACCESS_KEY"] = key  # wrong: 401
        run = fk.run_behave(root, env)
        assert [c.status for c in server.calls] == [401]
    assert "refused the credentials" in run.stderr
    assert assert_absent(key, run.stdout, run.stderr, roots=(root,)) >= 1


def test_plain_http_to_another_host_stays_offline(key, tmp_path):
    root = fk.write_suite(tmp_path, 4)
    env = {
        "BROWSERSTACK_USERNAME": USER,
        "BROWSERSTACK_ACCESS_KEY": key,
        "BROWSERSTACK_API_URL": "http://bstack-api.invalid",  # never resolvable
        "BSTACK_JOURNAL_DIR": str(root / "journal"),
    }
    run = fk.run_behave(root, env)
    assert run.returncode == fk.null_rc(root)
    assert "plain http://" in run.stderr and "nothing sent" in run.stderr
    run_dir = fk.only_run_dir(root / "journal")
    assert not (run_dir / "upload.lock").exists() and not (run_dir / "report.json").exists()
    assert assert_absent(key, run.stdout, run.stderr, roots=(root,)) >= 1


def test_key_from_browserstack_yml_stays_out_of_the_uploaders_argv_and_environment(
    srv, key, tmp_path
):
    root = fk.write_suite(tmp_path, 10, block_step=3)
    (root / "browserstack.yml").write_text(f"userName: {USER}\naccessKey: {key}\n", "utf-8")
    marker = root / "reached"
    env = fk.bstack_env(srv, root / "journal", FAULTKIT_MARKER=str(marker))
    del env["BROWSERSTACK_USERNAME"], env["BROWSERSTACK_ACCESS_KEY"]
    behave = fk.Spawned(root, env)
    try:
        fk.wait_for(marker.exists, timeout=30)
        run_dir = fk.only_run_dir(root / "journal")
        fk.wait_for(lambda: fk.uploader_pids(run_dir), timeout=10)
        (pid,) = fk.uploader_pids(run_dir)
        for part in ("cmdline", "environ"):
            data = Path(f"/proc/{pid}/{part}").read_bytes()
            assert key.encode() not in data, f"the key is in the uploader's {part}"
        fk.wait_for(lambda: srv.state.tests, timeout=10)  # and it did authenticate
    finally:
        behave.kill()


# --- objects and messages ----------------------------------------------------------------


def test_repr_of_transport_and_settings(key, tmp_path):
    transport = Transport("https://api.example.test", USER, key)
    assert_absent(key, repr(transport), str(transport))
    environ = {
        "BROWSERSTACK_USERNAME": USER,
        "BROWSERSTACK_ACCESS_KEY": key,
        "HTTPS_PROXY": f"http://proxyuser:{key}@proxy.example.test:3128",
    }
    settings = load_settings({}, environ, str(tmp_path))
    assert settings.access_key == key
    shown = [repr(settings), str(settings), *settings.problems]
    shown += [" ".join(row) for row in settings.describe()]
    assert_absent(key, *shown)


def test_key_inside_the_api_url_is_refused_and_never_shown(key, tmp_path):
    environ = {
        "BROWSERSTACK_USERNAME": USER,
        "BROWSERSTACK_ACCESS_KEY": "other",
        "BROWSERSTACK_API_URL": f"https://{USER}:{key}@api.example.test",
    }
    settings = load_settings({}, environ, str(tmp_path))
    assert settings.api_url_ok is False
    assert settings.problems
    assert_absent(key, repr(settings), *settings.problems)
    assert_absent(key, *(" ".join(row) for row in settings.describe()))


def test_transport_errors_never_carry_the_key(srv, key):
    def error_of(transport: Transport) -> TransportError:
        with pytest.raises(TransportError) as caught:
            transport.request("POST", "/ext/v1/builds/start", {"name": "x"})
        return caught.value

    kinds = {}
    refused = Transport(f"http://127.0.0.1:{fk.free_port()}", USER, key, timeout=2)
    kinds["connection"] = error_of(refused)
    srv.faults.latency(1000)
    kinds["timeout"] = error_of(Transport(srv.url, USER, key, timeout=0.2))
    srv.faults.clear()
    srv.faults.drop(count=1, mode="partial")
    kinds["protocol"] = error_of(Transport(srv.url, USER, key, timeout=2))
    kinds["dns"] = error_of(Transport("https://nonexistent.invalid", USER, key, timeout=2))
    assert {k: e.kind for k, e in kinds.items()} == {k: k for k in kinds}
    assert_absent(key, *(str(e) for e in kinds.values()), *(repr(e) for e in kinds.values()))


def test_no_credentials_over_plain_http_to_another_host(key, tmp_path):
    for url in ("http://api.example.test", "http://10.1.2.3:8080", "http://[2001:db8::1]"):
        with pytest.raises(ValueError) as caught:
            Transport(url, USER, key)
        assert "plain http" in str(caught.value)
        assert_absent(key, str(caught.value))
        settings = load_settings(
            {}, {"BROWSERSTACK_API_URL": url, "BROWSERSTACK_ACCESS_KEY": key}, str(tmp_path)
        )
        assert settings.api_url_ok is False
    # Loopback hosts may use http (the emulator); https is fine anywhere.
    for url in ("http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"):
        Transport(url, USER, key)
    # `behave-bstack upload` refuses too, before any connection.
    run_dir = fk.write_journal(tmp_path / "run", tests=1)
    options = {"api_url": "http://api.example.test", "username": USER, "access_key": key}
    with pytest.raises(ValueError) as caught:
        deliver_journal(run_dir, options, timeout=5)
    assert_absent(key, str(caught.value))


# --- file modes ---------------------------------------------------------------------------


def test_journal_files_and_run_directory_are_owner_only(srv, tmp_path):
    root = fk.write_suite(tmp_path, 4, attach={0})
    fk.run_behave(root, fk.bstack_env(srv, root / "journal"))
    run_dir = fk.only_run_dir(root / "journal")
    names = {p.name for p in run_dir.rglob("*")}
    assert {"events.jsonl", "acks.jsonl", "report.json", "attachments"} <= names
    loose = private_paths(run_dir)
    assert loose == [], loose


def test_uploader_log_files_are_owner_only(srv, tmp_path):
    root = fk.write_suite(tmp_path, 2)
    fk.run_behave(root, fk.bstack_env(srv, root / "journal", BSTACK_DEBUG="1"))
    run_dir = fk.only_run_dir(root / "journal")
    assert (run_dir / "uploader.err").exists() and (run_dir / "upload.log").exists()
    assert private_paths(run_dir) == []


def test_journal_root_created_owner_only(tmp_path):
    root = fk.write_suite(tmp_path, 1)
    fk.run_behave(root, {"BSTACK_JOURNAL_DIR": str(root / "new" / "journal")})
    assert fk.only_run_dir(root / "new" / "journal")
    assert private_paths(root / "new" / "journal") == []


def test_umask_is_not_what_makes_the_journal_private(srv, tmp_path):
    """Even with umask 000 the journal's own files come out 0o600."""
    root = fk.write_suite(tmp_path, 2)
    env = fk.bstack_env(srv, root / "journal")
    old = os.umask(0)
    try:
        subprocess.run(
            [sys.executable, "-m", "behave", "-f", fk.FORMATTER, "features"],
            cwd=root,
            env=fk.clean_env(env),
            capture_output=True,
            timeout=60,
        )
    finally:
        os.umask(old)
    run_dir = fk.only_run_dir(root / "journal")
    for name in ("events.jsonl", "acks.jsonl", "report.json", "upload.lock"):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
