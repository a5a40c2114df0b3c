"""`behave-bstack import FILE...`: journal reports of other runs and deliver them.

Runs in the `behave-bstack` command's process.  The reports (Cucumber Messages NDJSON,
Cucumber JSON, behave's `-f json`; importing/ reads them) become one journal, delivered
like a behave run's (delivery/uploader.deliver_journal, as `upload` does), with a run's
summary at the end.

Identity: the journal of an import is named by a digest of the reports' bytes, their
format and where they go (project, build name, build run identifier, build id):
`<UTC time of the first import>-import-<digest>`.  Importing the same reports into the same
build again finds that journal and sends only what it still holds (nothing, once it was
delivered), so nothing is sent twice while the journal is kept (`keep_journals`,
`behave-bstack clean`).  The journal is written to events.jsonl.partial and renamed into
place when whole: an import killed while journaling leaves nothing `upload` would send,
and the next import writes it again; one killed while delivering is completed by
`behave-bstack upload` (or by importing again).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from ..delivery.uploader import deliver_journal
from ..importing import (
    FORMATS,
    ImportContext,
    Paths,
    ReportError,
    ReportWriter,
    detect_format,
    file_time_ms,
    read_report,
)
from ..journal import store as journal
from ..origin import ci, vcs
from ..origin.build import build_start_body, journal_meta
from ..recording.summary import summary_lines
from .common import EXIT_CREDENTIALS, EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, CliError
from .journal_view import plural, read_state
from .sending import transport_options

PARTIAL = journal.EVENTS + ".partial"
FORMAT_NAMES = {
    "messages": "Cucumber Messages",
    "cucumber-json": "Cucumber JSON",
    "behave-json": "behave JSON",
}


def register(command) -> None:
    """Add the `import` subcommand (`command`: main.build_parser's subparser factory)."""
    parser = command(
        "import",
        "journal and send reports of other runs (Cucumber Messages, Cucumber JSON, behave JSON)",
        description="Report test results that other runners wrote (cucumber-js, "
        "cucumber-jvm, godog, Reqnroll, pytest-bdd, or behave's own -f json) to TRA, as a "
        "behave run with -f bstack would: one build, a test run per test case with its "
        "steps, hook runs and attachments. The same settings apply (project, build name, "
        "build run identifier, tags). Importing the same reports into the same build "
        "again sends nothing twice; an import cut short is completed by "
        "`behave-bstack upload`.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="report files; - reads stdin")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="the reports' format (default: recognised from each file)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds delivery may take (default 600); what is unsent stays in the journal",
    )
    parser.set_defaults(func=cmd_import)


def cmd_import(ctx) -> int:
    settings = ctx.settings
    ctx.warn_problems()
    if not settings.enabled:
        ctx.err(f"{PROG}: reporting is switched off (see `{PROG} doctor`); nothing imported")
        return EXIT_OK
    journal_dir = ctx.journal_dir()
    spooled: list[str] = []
    try:
        files = [
            _spool_stdin(journal_dir, spooled) if f == "-" else os.path.join(ctx.cwd, f)
            for f in ctx.args.files
        ]
        reports = []
        for name, path in zip(ctx.args.files, files, strict=True):
            reports.append((name, path, _format_of(name, path, ctx.args.format, CliError)))
        run_identifier = settings.build_run_identifier or ci.ci_run_identifier(ctx.environ)
        digest = _identity(reports, settings, run_identifier)
        run_dir = _journal_of(journal_dir, digest)
        try:
            journal.make_private_dir(run_dir)
        except OSError as exc:
            raise CliError(
                f"cannot write the journal in {journal_dir}: {exc}", EXIT_USAGE
            ) from None
        lock = journal.try_lock(run_dir)
        if lock is None:
            raise CliError(
                f"another behave-bstack process is importing or delivering {run_dir} now",
                EXIT_FAILED,
            )
        try:
            return _import_and_deliver(ctx, reports, run_dir, run_identifier, spooled)
        finally:
            lock.close()
    finally:
        for path in spooled:
            try:
                os.unlink(path)
            except OSError:
                pass


def _import_and_deliver(ctx, reports, run_dir: Path, run_identifier, spooled) -> int:
    settings = ctx.settings
    names = ", ".join(name for name, _, _ in reports)
    state = None
    if (run_dir / journal.EVENTS).is_file():
        ctx.err(
            f"{PROG}: {names}: imported before into {run_dir}; "
            "sending only what that journal still holds"
        )
        state = read_state(run_dir)  # reads the whole journal: not for a fresh one
        counts = {"tests": state.tests, "hooks": state.hooks}
    else:
        counts = _journal(ctx, reports, run_dir, run_identifier, spooled)
        ctx.err(
            f"{PROG}: {names}: {plural(counts['tests'], 'test')}, "
            f"{plural(counts['hooks'], 'hook run')}, "
            f"{plural(counts['logs'], 'log entry', 'log entries')} journaled in {run_dir}"
        )
    later = f"send it later with: {PROG} upload {run_dir}"
    if not settings.api_url_ok:
        ctx.err(f"{PROG}: nothing sent: the API URL {settings.api_url} is not allowed; {later}")
        return EXIT_USAGE
    if not settings.has_credentials:
        ctx.err(
            f"{PROG}: nothing sent: no BrowserStack credentials (set BROWSERSTACK_USERNAME "
            f"and BROWSERSTACK_ACCESS_KEY); {later}"
        )
        return EXIT_FAILED
    if state is not None and not state.needs_upload:
        ctx.err(
            f"{PROG}: nothing to send: {plural(state.acknowledged, 'call')} acknowledged"
            + (f", {state.failed} refused" if state.failed else "")
        )
        return EXIT_FAILED if state.failed else EXIT_OK
    report = deliver_journal(run_dir, transport_options(settings), timeout=ctx.args.timeout)
    outbox = SimpleNamespace(run_dir=run_dir, errors=[])
    for line in summary_lines(report, counts, outbox, settings):
        ctx.err(line)
    if report.get("stop_kind") == "credentials":
        return EXIT_CREDENTIALS
    if report.get("pending") or sum((report.get("failed") or {}).values()):
        return EXIT_FAILED
    return EXIT_OK


def _journal(ctx, reports, run_dir: Path, run_identifier, spooled) -> dict:
    """Write the whole journal to events.jsonl.partial, then rename it into place."""
    settings = ctx.settings
    partial = run_dir / PARTIAL
    if partial.exists():
        partial.unlink()  # an import killed while journaling (we hold the lock)
    repo_root = vcs.repo_root(ctx.cwd)
    owns_build = not settings.build_hashed_id
    meta = journal_meta(settings, ctx.cwd, owns_build, coordination=None)
    meta["import"] = {
        "files": [name for name, _, _ in reports],
        "formats": [f for *_, f in reports],
    }

    def build_body(started_at: int, framework: dict | None):
        if not owns_build:
            return None
        return build_start_body(
            settings, ctx.environ, ctx.cwd, repo_root, started_at, run_identifier, framework
        )

    sink = ReportWriter(run_dir, PARTIAL, meta, build_body, settings.environment)
    paths = Paths(ctx.cwd, settings.project_root or ctx.cwd, repo_root)
    try:
        for name, path, fmt in reports:
            anchor = int(time.time() * 1000) if path in spooled else file_time_ms(path)
            context = ImportContext(sink, paths, _lines_about(ctx, name), anchor)
            try:
                read_report(path, fmt, context)
            except ReportError as exc:
                raise CliError(f"{name}: {exc}", EXIT_USAGE) from None
            except OSError as exc:
                raise CliError(
                    f"{name}: cannot read it: {exc.strerror or exc}", EXIT_USAGE
                ) from None
        sink.finish(None)
    except BaseException:
        sink.close()
        try:
            partial.unlink()
        except OSError:
            pass
        raise
    os.replace(partial, run_dir / journal.EVENTS)
    return sink.counts


def _lines_about(ctx, name: str):
    """The importer's lines about one report, printed with the prefix and the file's name."""

    def about_report(line: str) -> None:
        ctx.err(f"{PROG}: {name}: {line}")

    return about_report


def _format_of(name: str, path: str, given: str | None, CliError) -> str:
    if not os.path.isfile(path):
        raise CliError(f"{name}: no such file")
    try:
        found = detect_format(path)
    except ReportError as exc:
        if given:
            return given  # the reader says what is wrong with it
        raise CliError(f"{name}: {exc}") from None
    except OSError as exc:
        raise CliError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    if given and found != given and not (given == "cucumber-json" and found == "behave-json"):
        raise CliError(
            f"{name}: this is a {FORMAT_NAMES[found]} report, not {FORMAT_NAMES[given]} "
            f"(give --format {found}, or leave --format out)"
        )
    return given or found


def _spool_stdin(journal_dir: Path, spooled: list[str]) -> str:
    """Standard input, copied to a private file: the reports are read twice (identity,
    then journaling)."""
    journal.make_private_dir(journal_dir)
    path = journal_dir / f".stdin-{os.getpid()}-{len(spooled)}"
    fd = journal.open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    spooled.append(str(path))
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return str(path)


def _identity(reports, settings, run_identifier: str | None) -> str:
    """The digest that names an import's journal (see the module's docstring)."""
    digest = hashlib.sha256(b"behave-bstack import 1\0")
    for _, path, fmt in reports:
        file_digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(block)
        digest.update(f"{fmt}\0{file_digest.hexdigest()}\0".encode())
    for value in (
        settings.project_name,
        settings.build_name,
        run_identifier,
        settings.build_hashed_id,
    ):
        digest.update(f"{value or ''}\0".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:24]


def _journal_of(journal_dir: Path, digest: str) -> Path:
    """The journal of an earlier import of the same reports, else a new one's place."""
    found = sorted(glob.glob(os.path.join(glob.escape(str(journal_dir)), f"*-import-{digest}")))
    if found:
        return Path(found[0])
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return journal_dir / f"{stamp}-import-{digest}"
