"""Removing journals that have nothing left to do.

Every behave run leaves a journal.  After a run, fully delivered journals beyond the newest
`keep_journals` (default 20) are removed; `behave-bstack clean` removes them on demand.
A journal is *fully delivered* when its run ended and the server acknowledged every call:
nothing pending, nothing refused.  Journals with unsent or refused calls, interrupted runs
(`upload` still has to close them), running ones, and one that a process is delivering
(it holds upload.lock) are never removed automatically.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from . import store as journal

log = logging.getLogger("behave_bstack")


def delivered_by_report(run_dir: Path) -> bool:
    """Fully delivered, as its last delivery reported (report.json): cheap, no journal
    parsing, for the pruning after every run.  No report: never delivered."""
    report = journal.read_report(run_dir)
    if not isinstance(report, dict):
        return False
    failed = report.get("failed") or {}
    return bool(
        report.get("ended")
        and report.get("pending") == 0
        and not (sum(failed.values()) if isinstance(failed, dict) else failed)
        and not report.get("stopped")
        and not report.get("waiting")
    )


def remove(run_dir: Path) -> bool:
    """Remove a journal unless a process is delivering it (holds its lock).  Its contents
    go while we hold the lock; the lock file, and then the directory, once we released it:
    Windows refuses to delete a file that is open (ours, holding the lock)."""
    run_dir = Path(run_dir)
    lock = journal.try_lock(run_dir)
    if lock is None:
        return False
    try:
        for child in run_dir.iterdir():
            if child.name in _LOCK_FILES:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    except OSError as exc:
        log.warning("cannot remove journal %s: %s", run_dir, exc)
        return False
    finally:
        lock.close()
    try:
        shutil.rmtree(run_dir)  # the lock file: nothing in it to deliver any more
    except OSError as exc:
        log.warning("cannot remove journal %s: %s", run_dir, exc)
    return True


_LOCK_FILES = (journal.LOCK, journal.LOCK + ".pid")  # (the second: journal.PidLock)


def prune(journal_dir: Path, keep: int) -> list[Path]:
    """After a run: remove fully delivered journals beyond the newest `keep` (0: none
    removed).  Returns the removed ones.  Never raises."""
    if keep <= 0:
        return []
    try:
        runs = list(journal.run_directories(journal_dir))
        if len(runs) <= keep:
            return []  # the common case costs one directory listing
        delivered = [run for run in runs if delivered_by_report(run)]
        # Run ids start with a UTC timestamp: sorted by name is oldest first.
        return [run for run in delivered[: max(0, len(delivered) - keep)] if remove(run)]
    except Exception as exc:  # noqa: BLE001 - housekeeping must never disturb a run
        log.warning("pruning journals in %s failed: %r", journal_dir, exc)
        return []
