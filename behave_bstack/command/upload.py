"""`behave-bstack upload`: send what journals still hold, each journal under its lock,
within one overall timeout; a line per journal and a total.

Runs in the command's process (the delivery itself is delivery.uploader's deliver_journal,
called here, in this process).
"""

from __future__ import annotations

import time

from ..journal import store as journal
from . import journal_view
from .common import EXIT_CREDENTIALS, EXIT_FAILED, EXIT_OK, PROG, Context, resolve_run
from .sending import need_sending_settings, transport_options


def cmd_upload(ctx: Context) -> int:
    from ..delivery.uploader import deliver_journal

    need_sending_settings(ctx)
    ctx.warn_problems()
    journal_dir = ctx.journal_dir()
    if ctx.args.runs:
        run_dirs = [resolve_run(spec, journal_dir, ctx.cwd) for spec in ctx.args.runs]
    else:
        run_dirs = list(journal.run_directories(journal_dir))
    todo = []
    for run_dir in dict.fromkeys(run_dirs):
        state = journal_view.read_state(run_dir)
        if state.needs_upload:
            todo.append(state)
        elif ctx.args.runs:
            ctx.out(
                f"{state.run_id}: nothing to send "
                f"({journal_view.plural(state.acknowledged, 'call')} acknowledged)"
            )
    if not todo:
        if not ctx.args.runs:
            ctx.out(f"nothing to upload: no journal in {journal_dir} holds unsent calls")
        return EXIT_OK

    options = transport_options(ctx.settings)
    deadline = time.monotonic() + ctx.args.timeout
    totals = {"journals": 0, "incomplete": 0, "sent": 0, "refused": 0, "pending": 0, "skipped": 0}
    stop: tuple[str, int] | None = None
    for state in todo:
        left = deadline - time.monotonic()
        if stop or left <= 0:
            why = stop[0] if stop else f"the {ctx.args.timeout:g} s timeout passed"
            ctx.out(
                f"{state.run_id}: not tried ({why}); "
                f"{journal_view.plural(state.pending_total, 'call')} pending"
            )
            totals["skipped"] += 1
            totals["pending"] += state.pending_total
            continue
        if state.writer_alive:
            ctx.out(f"{state.run_id}: skipped: the behave run writing it is still going")
            totals["skipped"] += 1
            continue
        lock = journal.try_lock(state.run_dir)
        if lock is None:
            ctx.out(f"{state.run_id}: skipped: another process is delivering it right now")
            totals["skipped"] += 1
            continue
        try:
            report = deliver_journal(state.run_dir, options, timeout=left)
        finally:
            lock.close()
        after = journal_view.read_state(state.run_dir)
        sent = after.acknowledged - state.acknowledged
        refused = sum((report.get("failed") or {}).values())
        if after.pending or after.needs_upload:
            totals["incomplete"] += 1  # tried, not all of it delivered: not "uploaded"
        else:
            totals["journals"] += 1
        totals["sent"] += sent
        totals["refused"] += refused
        totals["pending"] += after.pending_total
        ctx.out(upload_line(after, report, sent, refused))
        for reason in (report.get("reasons") or [])[:3]:
            ctx.out(f"    refused: {journal_view.first_line(reason)}")
        stopped = report.get("stopped")
        if stopped and not after.writer_alive:  # a run that started meanwhile stops only itself
            code = EXIT_CREDENTIALS if report.get("stop_kind") == "credentials" else EXIT_FAILED
            stop = (f"delivery stopped: {journal_view.first_line(stopped)}", code)
    ctx.out(
        f"total: {journal_view.plural(totals['journals'], 'journal')} uploaded, "
        + (f"{totals['incomplete']} incomplete, " if totals["incomplete"] else "")
        + f"{journal_view.plural(totals['sent'], 'call')} delivered, {totals['refused']} refused, "
        f"{totals['pending']} pending"
        + (
            f", {journal_view.plural(totals['skipped'], 'journal')} skipped"
            if totals["skipped"]
            else ""
        )
    )
    if stop:
        ctx.err(f"{PROG}: {stop[0]} (everything unsent stays in the journal)")
        return stop[1]
    failed = totals["refused"] or totals["pending"] or totals["skipped"]
    return EXIT_FAILED if failed else EXIT_OK


def upload_line(state: journal_view.JournalState, report: dict, sent: int, refused: int) -> str:
    delivered = report.get("delivered") or {}
    line = (
        f"{state.run_id}: {journal_view.plural(sent, 'call')} delivered, {refused} refused, "
        f"{state.pending_total} pending (tests {delivered.get('test_finish', 0)}/{state.tests}, "
        f"hook runs {delivered.get('hook_finish', 0)}/{state.hooks}, "
        f"{journal_view.plural(report.get('log_entries', 0), 'log entry', 'log entries')})"
    )
    if report.get("stopped"):
        line += f"; stopped: {journal_view.first_line(report['stopped'])}"
    url = report.get("build_url") or state.build_url
    return line + (f"; build {url}" if url else "")
