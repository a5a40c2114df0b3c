"""Messages (issue #17, item 7): one rule for every message behave-bstack prints, checked
on real output and on the package's source.

The rule (README "Messages"): every message behave-bstack prints on stderr starts with
`behave-bstack: ` exactly once (a multi-line summary continues with lines indented by two
spaces); a call the server answered with a 4xx is *refused* (never "failed" or "not
accepted"); counts agree in number ("1 build", "2 builds").
"""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

import faultkit as fk
from helpers import copy_features, run_behave

from behave_bstack.command import main as cli
from behave_bstack.emulator import TraServer
from behave_bstack.settings.config import load_settings

PACKAGE = Path(__file__).resolve().parents[1] / "behave_bstack"
PREFIX = "behave-bstack: "


def assert_prefixed(stderr: str) -> list[str]:
    """Every line of ours starts with the prefix exactly once; returns those lines."""
    ours = []
    for line in stderr.splitlines():
        if "bstack" not in line.split(" ", 1)[0]:
            continue  # behave's own output, or an indented continuation line
        assert line.startswith(PREFIX), line
        assert not line[len(PREFIX) :].lstrip().startswith(("bstack", "behave-bstack")), line
        ours.append(line)
    return ours


# --------------------------------------------------------------------------- the prefix


def test_a_run_with_bad_input_prints_every_line_with_one_prefix(tmp_path):
    root = copy_features(tmp_path)
    (root / "browserstack.yml").write_text("buildName: [a, b]\nplatforms: chrome\n")
    run = run_behave(
        [
            "-f",
            "behave_bstack:BstackFormatter",
            "-o",
            "report.txt",
            "-D",
            "bstack.nonsense=1",
            "-D",
            "bstack.flush_timeout=soon",
            "--include",
            "cart",
            "features/",
        ],
        root,
    )
    ours = assert_prefixed(run.stderr)
    text = "\n".join(ours)
    # -o FILE: one line, and no file.
    assert f"{PREFIX}-o report.txt: behave-bstack writes no file" in text
    assert not (root / "report.txt").exists()
    # An unknown setting far from every known one gets no suggestion.
    assert f"{PREFIX}unknown setting bstack.nonsense ignored (known:" in text
    assert "did you mean" not in text
    # YAML problems read "<path>: <key>: <problem>".
    assert f"{PREFIX}browserstack.yml: buildName: ['a', 'b'] is a list, not text" in text
    assert f"{PREFIX}browserstack.yml: platforms: not a list of mappings" in text
    assert f"{PREFIX}userdata bstack.flush_timeout='soon' is not a number" in text
    assert f"{PREFIX}nothing sent: no BrowserStack credentials" in text


def test_the_command_prints_every_error_with_one_prefix(tmp_path):
    cases = [
        ["upload", "--bogus"],
        ["build"],
        ["build", "start", "--bogus"],
        ["show", "nope"],
        ["upload", "-D", "bstack.nonsense=1", "-D", "bstack.buildname=x"],
        ["upload", "-D", "bstack.flush_timeout=x"],
        ["--debug", "upload", "-D", "bstack.concurrency=999"],
    ]
    for argv in cases:
        err = io.StringIO()
        cli.main(argv, stdout=io.StringIO(), stderr=err, environ={}, cwd=str(tmp_path))
        lines = assert_prefixed(err.getvalue())
        assert lines, (argv, err.getvalue())
        assert all(line.startswith(PREFIX) for line in err.getvalue().splitlines()), argv


def _printing_calls(tree: ast.AST):
    """The first argument of every call that prints a message: warn(...), *.err(...)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("warn", "err"):
            yield node.args[0]


def _starts_with_prefix(arg: ast.expr) -> bool:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value.startswith(PREFIX)
    if isinstance(arg, ast.JoinedStr) and arg.values:
        first = arg.values[0]
        if isinstance(first, ast.Constant):
            return str(first.value).startswith(PREFIX)
        # f"{PROG}: ..." (cli.py's name for "behave-bstack")
        if isinstance(first, ast.FormattedValue) and getattr(first.value, "id", "") == "PROG":
            return len(arg.values) > 1 and str(arg.values[1].value).startswith(": ")
    return False


def test_every_printed_message_in_the_source_has_the_prefix():
    """A scan of the package (the emulator aside: it is a test server): every literal
    message handed to warn()/err() starts with the prefix; no string starts "bstack: "."""
    offenders = []
    for path in reporter_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for arg in _printing_calls(tree):
            literal = isinstance(arg, (ast.Constant, ast.JoinedStr))
            if literal and not _starts_with_prefix(arg):
                offenders.append(f"{path.name}:{arg.lineno}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith("bstack: "):
                    offenders.append(f"{path.name}:{node.lineno} starts with 'bstack: '")
    assert offenders == []


def reporter_modules() -> list:
    """Every module of the reporter, in every subpackage; the local server's (emulator/)
    prints its own lines, not the reporter's messages."""
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "emulator" not in p.parts]


def test_counts_agree_in_number_in_the_source():
    """No message puts a count before a fixed plural ("{n} builds"): plural() does it."""
    plural_words = re.compile(r"^ (builds|calls|journals|tests|test runs|hook runs|entries)\b")
    offenders = []
    for path in reporter_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.JoinedStr):
                continue
            for before, after in zip(node.values, node.values[1:], strict=False):
                if isinstance(before, ast.FormattedValue) and isinstance(after, ast.Constant):
                    if plural_words.match(str(after.value)):
                        offenders.append(f"{path.name}:{node.lineno}: {after.value[:30]!r}")
    assert offenders == []


def test_suggestions_only_for_close_names():
    def hint(key: str) -> str:
        (problem,) = load_settings({key: "1"}, {}, "/tmp").problems
        return problem.split(" (known:")[0]

    assert hint("bstack.nonsense") == "unknown setting bstack.nonsense ignored"
    assert hint("bstack.flush") == "unknown setting bstack.flush ignored"
    assert hint("bstack.buildname").endswith("did you mean bstack.build_name?")
    assert hint("bstack.os_verison").endswith("did you mean bstack.os_version?")


# --------------------------------------------------------------------------- "refused"


def test_a_refused_call_is_refused_in_status_upload_and_show(tmp_path):
    run_dir = fk.write_journal(tmp_path / "journal" / "20200101-000000-1-aaaa", tests=2)
    name = fk.scenario_name(1)
    with TraServer(username="fk_user", access_key="fk_key") as srv:
        srv.faults.reject(name, message="name not allowed")
        env = fk.bstack_env(srv, tmp_path / "journal")
        outputs = {}
        for argv in (["upload"], ["status"], ["status", "--json"], ["show"]):
            out, err = io.StringIO(), io.StringIO()
            cli.main(argv, stdout=out, stderr=err, environ=env, cwd=str(tmp_path))
            outputs[argv[-1]] = out.getvalue() + err.getvalue()
    assert re.search(r"[1-9]\d* refused", outputs["upload"])
    assert "refused: test_start" in outputs["upload"]
    assert re.search(r"[1-9]\d* refused \(first: test_start", outputs["status"])
    (record,) = json.loads(outputs["--json"])
    assert record["refused"] >= 1 and "name not allowed" in record["first_refused"]
    assert "! refused by the server: " in outputs["show"]
    for text in outputs.values():
        assert "failed (first" not in text and "not accepted" not in text
        assert not re.search(r"\d failed,", text)
    assert str(run_dir) in outputs["show"]


# --------------------------------------------------------------------------- small things


def test_upload_help_names_latest_and_status_json_is_a_list(capsys, tmp_path):
    cli.main(["upload", "--help"], stdout=io.StringIO(), stderr=io.StringIO(), environ={})
    assert "`latest`" in capsys.readouterr().out
    cli.main(["status", "--help"], stdout=io.StringIO(), stderr=io.StringIO(), environ={})
    assert "a JSON list, one object per journal" in capsys.readouterr().out
    fk.write_journal(tmp_path / "journal" / "20200101-000000-1-aaaa", tests=1)
    out = io.StringIO()
    env = {"BSTACK_JOURNAL_DIR": str(tmp_path / "journal")}
    cli.main(["status", "--json"], stdout=out, stderr=io.StringIO(), environ=env, cwd=str(tmp_path))
    data = json.loads(out.getvalue())
    assert isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)
    doc = (PACKAGE.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "one JSON list with one object per journal" in doc


def test_show_counts_a_hooks_logs_under_the_hook(tmp_path):
    """write_journal: per test one test log ("out-i") and one log of its before_scenario
    hook ("hook-<name>").  Each is counted and listed under its own run."""
    fk.write_journal(tmp_path / "journal" / "20200101-000000-1-aaaa", tests=1)
    out = io.StringIO()
    env = {"BSTACK_JOURNAL_DIR": str(tmp_path / "journal")}
    cli.main(["show", "--logs"], stdout=out, stderr=io.StringIO(), environ=env, cwd=str(tmp_path))
    lines = out.getvalue().splitlines()
    hook = next(i for i, line in enumerate(lines) if "hook before_scenario:" in line)
    assert lines[hook + 1].strip() == "1 log entry"
    assert "hook-" in lines[hook + 2]
    test_count = [line for line in lines[hook + 3 :] if line.strip().endswith("log entry")]
    assert test_count, out.getvalue()
    own = lines.index(test_count[0])
    assert "out-0" in lines[own + 1] and "hook-" not in lines[own + 1]
    assert not any("2 log entries" in line for line in lines[:-1])


def test_a_backtrace_starts_with_the_exception_type_and_message(tmp_path):
    """README: failure[].backtrace has the exception type and message first."""
    root = copy_features(tmp_path)
    with TraServer(username="bs_user", access_key="bs_key") as srv:
        env = fk.bstack_env(srv, tmp_path / "journal")
        run = run_behave(
            ["-f", "behave_bstack:BstackFormatter", "--include", "checkout", "features/"],
            root,
            env,
        )
        assert run.returncode == 1, run.stderr
        tests = {t.start["name"]: t for t in srv.state.tests.values()}
    wrong = tests["A deliberately wrong total"].finish["failure"][0]["backtrace"]
    assert wrong[0] == "AssertionError: expected total 9.99, got 2.25"
    assert wrong[-1] == "Failed step: Then the cart total is 9.99"
    stock = tests["Buying more cheese than the shop has"].finish["failure"][0]["backtrace"]
    assert stock[0].startswith("OutOfStockError: only 2 x cheese in stock")


def test_readme_has_the_new_rows():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## What happens when…", 1)[1].split("\n## ", 1)[0]
    for proof in (
        "test_unreachable.py::test_unreachable_api_gives_up_early_with_one_line",
        "test_process_faults.py::test_status_counts_the_closing_of_an_interrupted_run_as_pending",
        "test_housekeeping.py::test_a_run_prunes_delivered_journals_beyond_keep",
        "test_messages.py::test_a_run_with_bad_input_prints_every_line_with_one_prefix",
    ):
        assert proof in table, proof
