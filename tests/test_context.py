"""Logs, attachments, custom metadata and environment reach TRA (issue "Logs, attachments...")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import clean_env, server_env

from behave_bstack.emulator.server import TraServer

FEATURE = """
@bstack.owner=alice
Feature: Context

  @bstack.ticket=SHOP-42 @bstack.priority=high
  Scenario: Talkative
    Given a step that prints and logs
    And a step that attaches things
    And a step that sets metadata and environment

  Scenario: Very long output
    Given a step that prints 25000 characters
"""

STEPS = """
import logging
import behave_bstack
from behave import given

log = logging.getLogger("shop.app")

@given("a step that prints and logs")
def _talk(context):
    print("hello from print")
    sys_err = __import__("sys").stderr
    sys_err.write("to stderr\\n")
    log.warning("careful: %s", "low stock")
    log.error("broken")
    logging.getLogger("behave_bstack").warning("our own line must not be reported")

@given("a step that attaches things")
def _attach(context):
    if hasattr(context, "attach"):
        context.attach("text/plain", b"attached via behave")
    behave_bstack.attach(context, b"\\x89PNG\\r\\n\\x1a\\nfake", name="shot.png")
    path = context.config.userdata.get("attach_path")
    behave_bstack.attach(context, path)

@given("a step that sets metadata and environment")
def _meta(context):
    behave_bstack.set_custom_metadata(context, "component", "cart", "checkout")
    behave_bstack.set_environment(context, browser="firefox", browser_version="128")

@given("a step that prints {n:d} characters")
def _long(context, n):
    print("x" * n)
"""

ENVIRONMENT = """
import behave_bstack

def before_all(context):
    behave_bstack.set_environment(context, os="linux", device="ci-box")

def before_scenario(context, scenario):
    print("setting up", scenario.name)
"""


def make_project(root: Path) -> Path:
    (root / "features" / "steps").mkdir(parents=True)
    (root / "features" / "context.feature").write_text(FEATURE)
    (root / "features" / "steps" / "steps.py").write_text(STEPS)
    (root / "features" / "environment.py").write_text(ENVIRONMENT)
    (root / "report.txt").write_text("a small report\n")
    return root


def run(server: TraServer, root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = clean_env(server_env(server, root / "journal", BROWSERSTACK_BROWSER="chrome"))
    cmd = [
        sys.executable,
        "-m",
        "behave",
        "-f",
        "behave_bstack:BstackFormatter",
        "-D",
        f"attach_path={root / 'report.txt'}",
        *extra,
        "features",
    ]
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=120)


@pytest.fixture
def server():
    with TraServer(username="bs_user", access_key="bs_key") as srv:
        yield srv


def reported_tests(server):
    return {t.start["name"]: t for t in server.state.tests.values()}


@pytest.mark.parametrize(
    "capture", [[], ["--no-capture", "--no-logcapture"]], ids=["capture", "no-capture"]
)
def test_output_becomes_test_and_hook_logs(server, tmp_path, capture):
    root = make_project(tmp_path)
    result = run(server, root, *capture)
    assert result.returncode == 0, result.stderr.decode()
    talkative = reported_tests(server)["Talkative"]
    entries = [
        log.entry for log in server.state.logs if log.entry.get("test_run_uuid") == talkative.uuid
    ]
    messages = "\n".join(e["message"] for e in entries if e["kind"] == "TEST_LOG")
    assert "hello from print" in messages
    assert "to stderr" in messages
    assert "shop.app: careful: low stock" in messages
    assert "our own line" not in messages
    levels = {e["message"]: e["level"] for e in entries if e["kind"] == "TEST_LOG"}
    assert levels["shop.app: careful: low stock"] == "WARN"
    assert levels["shop.app: broken"] == "ERROR"
    assert all(e["timestamp"].endswith("Z") for e in entries)
    # What before_scenario printed belongs to its hook run.
    hook_ids = {h.uuid for h in server.state.hooks.values() if h.hook_type == "before_scenario"}
    hook_logs = [
        log.entry for log in server.state.logs if log.entry.get("hook_run_uuid") in hook_ids
    ]
    assert any("setting up Talkative" in e["message"] for e in hook_logs)
    assert all(e["kind"] == "HOOK_LOG" for e in hook_logs)


def test_long_output_is_split_not_dropped(server, tmp_path):
    root = make_project(tmp_path)
    assert run(server, root).returncode == 0
    test = reported_tests(server)["Very long output"]
    parts = [
        log.entry["message"]
        for log in server.state.logs
        if log.entry.get("test_run_uuid") == test.uuid
    ]
    assert len(parts) >= 3
    assert all(len(p) <= 10_000 for p in parts)
    assert sum(p.count("x") for p in parts) == 25_000


def test_attachments(server, tmp_path):
    root = make_project(tmp_path)
    assert run(server, root).returncode == 0
    test = reported_tests(server)["Talkative"]
    entries = [
        log.entry for log in server.state.logs if log.entry.get("test_run_uuid") == test.uuid
    ]
    shots = [e for e in entries if e["kind"] == "TEST_SCREENSHOT"]
    files = [e for e in entries if e["kind"] == "TEST_ATTACHMENT"]
    assert [s["file_name"] for s in shots] == ["shot.png"]
    assert shots[0]["attachment_type"] == "SCREENSHOT"
    assert shots[0]["message"].startswith("data:image/png;base64,")
    assert any(f["file_name"] == "report.txt" and f["message"] == "a small report\n" for f in files)
    if sys.version_info and _behave_has_attach():
        assert any(f["message"] == "attached via behave" for f in files)
    # The bytes are kept beside the journal.
    kept = list((root / "journal").glob("*/attachments/*"))
    assert any(p.name.endswith("shot.png") and p.read_bytes().startswith(b"\x89PNG") for p in kept)


def _behave_has_attach() -> bool:
    from behave_bstack.origin.host import behave_version

    return not behave_version().startswith("1.2")


def test_custom_metadata_and_environment(server, tmp_path):
    root = make_project(tmp_path)
    assert run(server, root).returncode == 0
    tests = reported_tests(server)
    talkative = tests["Talkative"].finish
    assert talkative["custom_metadata"]["owner"] == ["alice"]
    assert talkative["custom_metadata"]["ticket"] == ["SHOP-42"]
    assert talkative["custom_metadata"]["priority"] == ["high"]
    assert talkative["custom_metadata"]["component"] == ["cart", "checkout"]
    # configuration < before_all < the test's own call
    assert talkative["environment"] == {
        "browser": "firefox",
        "browser_version": "128",
        "os": "linux",
        "device": "ci-box",
    }
    other = tests["Very long output"].finish
    assert other["environment"] == {"browser": "chrome", "os": "linux", "device": "ci-box"}
    assert "component" not in other.get("custom_metadata", {})


def test_logs_switch_off(server, tmp_path):
    root = make_project(tmp_path)
    assert run(server, root, "-D", "bstack.logs=off").returncode == 0
    kinds = {log.entry["kind"] for log in server.state.logs}
    assert "TEST_LOG" not in kinds and "HOOK_LOG" not in kinds
    assert "TEST_SCREENSHOT" in kinds  # attachments are not logs
