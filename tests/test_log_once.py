"""One logging record is one log entry, whatever handler also prints it (real behave runs).

logging.basicConfig() in before_all is the most common logging set-up in environment.py:
its StreamHandler writes every record to stderr, where the reporter's tee (capture off) or
behave's capture buffer (capture on) would see it a second time.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
from helpers import FORMATTER, assert_delivery_clean, run_behave, server_env

ENVIRONMENT = """\
import logging
import os
import sys

log = logging.getLogger("myproj.env")


class Colored(logging.Handler):
    # What rich and colorlog do: format, decorate, write to a console stream.
    def emit(self, record):
        sys.stdout.write("\\x1b[32m" + self.format(record) + "\\x1b[0m\\n")


def before_all(context):
    setup = os.environ.get("LOG_SETUP")
    if setup == "basic":
        logging.basicConfig(level=logging.INFO)
    elif setup == "stdout":
        handler = logging.StreamHandler(sys.stdout)
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    elif setup == "colored":
        logging.getLogger().addHandler(Colored())
        logging.getLogger().setLevel(logging.INFO)


def before_scenario(context, scenario):
    log.info("hook says hi")
"""

STEPS = """\
import logging
from behave import given

log = logging.getLogger("myproj.steps")


@given("a step logs and prints")
def step(context):
    log.info("step says hi")
    log.warning("step warns")
    print("printed once")
"""

FEATURE = """\
Feature: logging
  Scenario: logs
    Given a step logs and prints
"""


def suite(root: Path) -> Path:
    for name, text in {
        "features/environment.py": ENVIRONMENT,
        "features/steps/steps.py": STEPS,
        "features/logging.feature": FEATURE,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def log_messages(server) -> Counter:
    return Counter((r.entry["level"], r.entry["message"]) for r in server.state.logs)


@pytest.mark.parametrize("setup", ["basic", "stdout", "colored", "none"])
@pytest.mark.parametrize(
    "options",
    [[], ["--no-capture"], ["--no-logcapture", "--logging-level=INFO"]],
    ids=["capture", "no-capture", "behave-logging-level"],
)
def test_each_record_is_one_entry_at_its_level(tmp_path, tra_server, setup, options):
    root = suite(tmp_path)
    env = server_env(tra_server, tmp_path / "journal", LOG_SETUP=setup)
    run = run_behave(["-f", FORMATTER, *options, "features"], root, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_delivery_clean(tra_server)
    got = log_messages(tra_server)
    # Each record at most once, as the record; never as a handler's text.
    assert got[("WARN", "myproj.steps: step warns")] == 1, got
    assert got[("INFO", "printed once")] == 1, got
    for (_level, message), count in got.items():
        assert count == 1, got
        assert "step warns" not in message or message == "myproj.steps: step warns", got
        assert "says hi" not in message or message.startswith("myproj."), got
    if setup != "none":  # the records the user configured INFO for
        assert got[("INFO", "myproj.steps: step says hi")] == 1, got
        assert got[("INFO", "myproj.env: hook says hi")] == 1, got
