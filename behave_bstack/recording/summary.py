"""The end-of-run block: what was reported, what is still waiting, and where to look."""

from __future__ import annotations


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def internal_error_lines(outbox) -> list[str]:
    return [f"  internal error (please report): {error}" for error in outbox.errors]


def offline_line(settings, outbox, counts: dict) -> str:
    where = outbox.run_dir
    if not settings.has_credentials:
        why = "no BrowserStack credentials (set BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY)"
    else:
        why = f"the API URL {settings.api_url} is not allowed (see the line above)"
    return (
        f"behave-bstack: nothing sent: {why}. {_plural(counts.get('tests', 0), 'test')} and "
        f"{_plural(counts.get('hooks', 0), 'hook run')} journaled in {where}; "
        f"send them later with: behave-bstack upload {where}"
    )


def unreachable_line(report: dict, counts: dict, outbox) -> str:
    """The API never answered and every attempt failed to connect: one line."""
    where = outbox.run_dir
    return (
        f"behave-bstack: nothing sent: {report['stopped']}. "
        f"{_plural(counts.get('tests', 0), 'test')} and "
        f"{_plural(counts.get('hooks', 0), 'hook run')} journaled in {where}; "
        f"send them later with: behave-bstack upload {where}"
    )


def summary_lines(report: dict | None, counts: dict, outbox, settings) -> list[str]:
    if (
        report is not None
        and report.get("stop_kind") == "unreachable"
        and not report.get("delivered")
        and not report.get("failed")
    ):
        return [unreachable_line(report, counts, outbox), *internal_error_lines(outbox)]
    lines = ["behave-bstack:"]
    if report is None:
        lines.append(
            f"  delivery did not report back; everything is kept in {outbox.run_dir}"
            f" (send it with: behave-bstack upload {outbox.run_dir})"
        )
        return lines
    delivered, failed = report.get("delivered", {}), report.get("failed", {})
    lines.append(
        f"  reported {_plural(delivered.get('test_finish', 0), 'test')} of {counts.get('tests', 0)}, "
        f"{_plural(delivered.get('hook_finish', 0), 'hook run')} of {counts.get('hooks', 0)}, "
        f"{_plural(report.get('log_entries', 0), 'log entry').replace('entrys', 'entries')}; "
        f"{_plural(report.get('retries', 0), 'retry').replace('retrys', 'retries')}"
    )
    if report.get("stopped"):
        lines.append(f"  delivery stopped: {report['stopped']}")
    pending = report.get("pending", 0)
    if pending:
        lines.append(
            f"  {_plural(pending, 'call')} still pending in {outbox.run_dir}; "
            f"send with: behave-bstack upload {outbox.run_dir}"
        )
    total_failed = sum(failed.values())
    if total_failed:
        lines.append(f"  {_plural(total_failed, 'call')} refused by the server:")
        lines.extend(f"    {reason}" for reason in report.get("reasons", [])[:5])
    lines.extend(internal_error_lines(outbox))
    if report.get("build_url"):
        lines.append(f"  build: {report['build_url']}")
    return lines
