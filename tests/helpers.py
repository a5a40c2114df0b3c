"""Running real behave with the bstack formatter, and reading what the TRA emulator got.

Shared by the integration, hook, conformance and mapping tests (conftest.py exposes the
fixtures). Nothing here touches the network beyond the loopback emulator.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import behave

from behave_bstack.emulator import BuildRecord, HookRunRecord, TestRunRecord, TraServer

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "features"
CONFORMANCE = REPO / "tests" / "conformance_features"
FORMATTER = "behave_bstack:BstackFormatter"
BEHAVE_13 = tuple(int(p) for p in re.findall(r"\d+", behave.__version__)[:2]) >= (1, 3)
# Where the CI (and the lead) keep a behave 1.2.6 interpreter next to the 1.3 one.
VENV126_PYTHON = Path("/tmp/venv126/bin/python")
# The demo suite's Rules need behave 1.3; 1.2.6 cannot even parse that file.
DEMO_ARGS = ["features/"] if BEHAVE_13 else ["--exclude", "rules.feature", "features/"]
_OWN_PREFIXES = ("BROWSERSTACK_", "BSTACK_")


class BehaveRun(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


_PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")


def clean_env(env_extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without any BrowserStack/bstack or proxy setting, then env_extra on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_OWN_PREFIXES) and k.lower() not in _PROXY_VARS
    }
    env.update(env_extra or {})
    return env


def server_env(server: TraServer, journal_dir: Path, **extra: str) -> dict[str, str]:
    """Settings that make a run report to `server` and journal below `journal_dir`."""
    env = {
        "BROWSERSTACK_USERNAME": server.username,
        "BROWSERSTACK_ACCESS_KEY": server.access_key,
        "BROWSERSTACK_API_URL": server.url,
        "BSTACK_JOURNAL_DIR": str(journal_dir),
        "BSTACK_FLUSH_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def copy_features(tmp_path: Path) -> Path:
    """A private copy of the demo suite at tmp_path/features; returns tmp_path (the cwd)."""
    shutil.copytree(FEATURES, tmp_path / "features", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def run_behave(
    args: Iterable[str],
    cwd: Path | str,
    env_extra: dict[str, str] | None = None,
    in_process: bool = False,
    python: str | os.PathLike | None = None,
    timeout: float = 60,
) -> BehaveRun:
    """Run behave with `args` in `cwd` under a clean environment plus env_extra.

    Default: a subprocess (`python -m behave`, python defaulting to this interpreter).
    in_process=True builds behave's Configuration and runs it in this process, the way
    behavex's workers do; the global step registry is replaced for the run and restored.
    """
    args = [str(a) for a in args]
    if in_process:
        return _run_in_process(args, Path(cwd), clean_env(env_extra))
    proc = subprocess.run(
        [str(python or sys.executable), "-m", "behave", *args],
        cwd=str(cwd),
        env=clean_env(env_extra),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
    )
    return BehaveRun(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def _isolated_process_state(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    """cwd, os.environ, sys.path, sys.modules, logging and behave's step registry, put back
    afterwards: step modules register into a process-wide registry, which would otherwise
    call the second run's steps ambiguous."""
    import logging

    import behave.runner
    import behave.step_registry as step_registry

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    decorator_names = ("given", "when", "then", "step", "Given", "When", "Then", "Step")
    saved_registry = step_registry.registry
    saved_decorators = {n: getattr(step_registry, n) for n in decorator_names}
    fresh = step_registry.StepRegistry()
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        step_registry.registry = fresh
        behave.runner.the_step_registry = fresh
        for name in decorator_names:
            decorator = fresh.make_decorator(name.lower())
            setattr(step_registry, name, decorator)
            setattr(behave, name, decorator)
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        suite_dir = str(cwd.resolve()) + os.sep
        for name in set(sys.modules) - saved_modules:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if os.path.abspath(module_file).startswith(suite_dir):
                del sys.modules[name]  # the suite's own modules, e.g. the demo's `cart`
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        step_registry.registry = saved_registry
        behave.runner.the_step_registry = saved_registry
        for name, decorator in saved_decorators.items():
            setattr(step_registry, name, decorator)
            setattr(behave, name, decorator)


def _run_in_process(args: list[str], cwd: Path, env: dict[str, str]) -> BehaveRun:
    from behave.__main__ import run_behave as behave_main
    from behave.configuration import Configuration

    out, err = io.StringIO(), io.StringIO()
    with (
        _isolated_process_state(cwd, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            rc = behave_main(Configuration(command_args=args))
        except SystemExit as exc:  # bad options end in sys.exit(), as on the command line
            rc = exc.code if isinstance(exc.code, int) else 1
    return BehaveRun(int(rc), out.getvalue(), err.getvalue())


# -- what the emulator received ----------------------------------------------------------


def only_build(server: TraServer) -> BuildRecord:
    """The single build of the run (fails when there are zero or several)."""
    builds = list(server.state.builds.values())
    assert len(builds) == 1, f"expected one build, got {len(builds)}"
    return builds[0]


def reported_tests(server: TraServer) -> list[TestRunRecord]:
    """The build's test runs, in the order the server received their starts."""
    return server.state.tests_in(only_build(server).id)


def reported_hooks(server: TraServer) -> list[HookRunRecord]:
    return server.state.hooks_in(only_build(server).id)


def refused_calls(server: TraServer) -> list:
    """Calls the server did not accept: 4xx (an invalid payload), 5xx or no answer."""
    return [c for c in server.calls if c.status != 200]


def assert_delivery_clean(server: TraServer) -> None:
    """Every call valid and answered; the build started first, finished once and last;
    every test and hook run finished exactly once."""
    bad = [(c.op, c.status, c.body) for c in refused_calls(server)]
    assert not bad, f"refused calls: {bad[:3]}"
    calls = sorted(server.calls, key=lambda c: c.seq)
    assert calls[0].op == "build_start"
    assert calls[-1].op == "build_finish"
    assert [c.op for c in calls].count("build_finish") == 1
    assert only_build(server).finish_count == 1
    for run in reported_tests(server) + reported_hooks(server):
        assert run.finish_count == 1, (run.start["name"], run.finish_count)


def behave_json_scenarios(path: Path) -> list[dict]:
    """The scenarios (outline rows included) in behave's own `-f json` output."""
    features = json.loads(Path(path).read_text(encoding="utf-8"))
    return [e for f in features for e in f.get("elements", ()) if e.get("type") == "scenario"]


def by_location(runs: Iterable) -> dict[str, Any]:
    """Test (or hook) runs keyed by their start's location; fails on a duplicate."""
    found: dict[str, Any] = {}
    for run in runs:
        location = run.start.get("location")
        assert location not in found, f"two runs at {location}"
        found[location] = run
    return found


def failure_text(body: dict) -> str:
    """All backtrace lines of a finish body, joined."""
    return "\n".join(line for f in body.get("failure") or () for line in f["backtrace"])


def stderr_lines(stderr: str, needle: str = "behave-bstack") -> list[str]:
    return [line for line in stderr.splitlines() if needle in line]
