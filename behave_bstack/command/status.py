"""`behave-bstack status`: one line per journal (or a JSON list); exit 1 if any journal
holds unsent or refused calls.  What a line says is journal_view's.

Runs in the command's process.
"""

from __future__ import annotations

import json

from ..journal import store as journal
from . import journal_view
from .common import EXIT_FAILED, EXIT_OK, Context


def cmd_status(ctx: Context) -> int:
    journal_dir = ctx.journal_dir()
    states = [journal_view.read_state(d) for d in journal.run_directories(journal_dir)]
    if ctx.args.json:
        ctx.out(json.dumps([journal_view.status_record(s) for s in states], indent=1))
    elif not states:
        ctx.out(f"no journals in {journal_dir}")
    else:
        for state in states:
            ctx.out(journal_view.status_line(state))
    return EXIT_FAILED if any(s.needs_upload or s.failed for s in states) else EXIT_OK
