"""`behave-bstack clean`: remove fully delivered journals (--all: every journal not in
use), saying what was removed and what was kept and why.

Runs in the command's process.
"""

from __future__ import annotations

from ..journal import store as journal
from . import journal_view
from .common import EXIT_OK, Context


def cmd_clean(ctx: Context) -> int:
    """Remove fully delivered journals (with --all: every journal not in use)."""
    from ..journal.housekeeping import remove

    journal_dir = ctx.journal_dir()
    states = [journal_view.read_state(d) for d in journal.run_directories(journal_dir)]
    chosen, kept = [], []
    for state in states:
        if state.state == "running":
            kept.append((state, "its behave run is still going"))
        elif ctx.args.all or state.fully_delivered:
            chosen.append(state)
        else:
            why = f"{state.pending_total} pending" if state.pending_total else ""
            if state.failed:
                why += (", " if why else "") + f"{state.failed} refused"
            kept.append((state, why or "not fully delivered"))
    verb = "would remove" if ctx.args.dry_run else "removed"
    removed = 0
    for state in chosen:
        what = "fully delivered" if state.fully_delivered else f"{state.pending_total} pending"
        if ctx.args.dry_run or remove(state.run_dir):
            removed += 1
            ctx.out(f"{verb} {state.run_dir} ({what})")
        else:
            kept.append((state, "another process is delivering it"))
    for state, why in kept:
        ctx.out(f"kept {state.run_dir} ({why})")
    ctx.out(
        f"{verb} {journal_view.plural(removed, 'journal')}, kept {len(kept)}"
        + ("" if ctx.args.all or not kept else " (`--all` removes those not in use too)")
    )
    return EXIT_OK
