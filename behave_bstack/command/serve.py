"""`behave-bstack serve`: the local TRA emulator in the foreground, the exports that point
behave at it, then a line per call it receives until Ctrl-C or SIGTERM.

Runs in the command's process (the emulator serves from threads of it).
"""

from __future__ import annotations

import shlex
import signal
import threading

from . import journal_view
from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, CliError, Context


def cmd_serve(ctx: Context) -> int:
    from ..emulator import TraServer

    args = ctx.args
    printing = threading.Lock()  # held while the exports print: call lines come after them
    printing.acquire()
    holding = True
    try:
        server = TraServer(username=args.user, access_key=args.key, host=args.host, port=args.port)
        if not args.quiet:
            server.on_call = _call_printer(ctx, server, printing)
        server.start()
    except ValueError as exc:  # not a loopback address
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}", EXIT_FAILED) from None
    done = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        ctx.out(f"TRA emulator listening on {server.url} (Ctrl-C stops it); to report to it:")
        ctx.out(f"export BROWSERSTACK_API_URL={server.url}")
        ctx.out(f"export BROWSERSTACK_USERNAME={shlex.quote(args.user)}")
        if args.key == ctx.settings.access_key:
            ctx.out("# BROWSERSTACK_ACCESS_KEY: the access key you already use (not shown)")
        else:
            # The emulator's own key, chosen on this command line: not a BrowserStack secret.
            ctx.console.stdout.write(f"export BROWSERSTACK_ACCESS_KEY={shlex.quote(args.key)}\n")
            ctx.console.stdout.flush()
        ctx.out(f"# what it receives: {server.url}/ in a browser, or {server.url}/_emulator/state")
        if not args.quiet:
            ctx.out("# one line per call follows (--quiet: none)")
        printing.release()
        holding = False
        while not done.wait(0.5):
            pass
    finally:
        if holding:  # the exports could not be printed: let the call printers go
            printing.release()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    state = server.state
    plural = journal_view.plural
    ctx.err(
        f"{PROG}: emulator stopped; it received {plural(len(state.builds), 'build')}, "
        f"{plural(len(state.tests), 'test run')}, {plural(len(state.hooks), 'hook run')}, "
        f"{plural(len(state.logs), 'log entry', 'log entries')}"
    )
    return EXIT_OK


def _call_printer(ctx: Context, server, printing: threading.Lock):
    """A line per API call, whole lines only: the emulator serves calls from many threads."""
    from ..emulator.call_line import call_line

    def print_call(call) -> None:
        line = call_line(call, server.state)
        with printing:
            ctx.out(line)

    return print_call
