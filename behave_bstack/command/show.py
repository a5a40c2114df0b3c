"""`behave-bstack show`: a run from its journal, as a tree (journal_view draws it);
works offline.

Runs in the command's process.
"""

from __future__ import annotations

from . import journal_view
from .common import EXIT_OK, Context, resolve_run


def cmd_show(ctx: Context) -> int:
    run_dir = resolve_run(ctx.args.run, ctx.journal_dir(), ctx.cwd)
    for line in journal_view.render_view(journal_view.load_view(run_dir), ctx.args.logs):
        ctx.out(line)
    return EXIT_OK
