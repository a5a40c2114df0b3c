"""The `behave-bstack` command (also `python -m behave_bstack`): the argument parser, the
dispatch to one module per command, and the exit-code convention (EXIT_CODES: every error
is one line on stderr and an exit code; an unexpected exception is exit 1, Ctrl-C 130).

    upload   upload.py   send what journals still hold
    status   status.py   one line per journal
    show     show.py     a run from its journal, as a tree
    clean    clean.py    remove fully delivered journals
    doctor   doctor.py   configuration and connectivity (probes.py: DNS, TCP, proxy, TLS)
    build    builds.py   start/finish a build shared by runs
    serve    serve.py    the local TRA emulator

common.py has what they share (Console, Context, CliError, the exit codes), sending.py
the command's own API calls, userdata.py the settings behave's config files and -D give.
Every message goes through Console, which hides the access key wherever it might show up
(even in --debug tracebacks).

Runs in the command's process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import traceback
from collections.abc import Mapping
from typing import TextIO

from ..base.version import __version__
from ..settings.config import load_settings
from . import import_report
from .builds import cmd_build_finish, cmd_build_start
from .clean import cmd_clean
from .common import EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, CliError, Console, Context
from .doctor import DOCTOR_BUILD, cmd_doctor
from .serve import cmd_serve
from .show import cmd_show
from .status import cmd_status
from .upload import cmd_upload
from .userdata import behave_userdata, parse_defines


class _LogHandler(logging.Handler):
    """--debug: the package's log lines on stderr, scrubbed."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.DEBUG)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.err(f"{PROG}: debug: {record.getMessage()}")
        except Exception:  # noqa: BLE001 - logging must never end the command
            pass


def _wrap(text: str) -> str:
    """Descriptions are written as paragraphs; the raw help formatter keeps line breaks."""
    return "\n\n".join(textwrap.fill(part, 79) for part in text.split("\n\n"))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise CliError(f"{message} (see {self.prog} --help)", EXIT_USAGE, self.prog)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the package's log lines and tracebacks (never the access key)",
    )
    common.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting, as behave's -D (e.g. -D bstack.journal_dir=out/journal)",
    )
    journal_dir = argparse.ArgumentParser(add_help=False)
    journal_dir.add_argument(
        "--journal-dir",
        metavar="DIR",
        help="where the journals are (default: the journal_dir setting, "
        "BSTACK_JOURNAL_DIR, .behave-bstack/journal)",
    )
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description=_wrap(
            "Deliver, inspect and check behave-bstack's reports to BrowserStack "
            "Test Reporting & Analytics."
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log lines and tracebacks (never the access key); also after the command",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, parents=(), **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=_wrap(kwargs.pop("description", help_text)),
            epilog=EXIT_CODES,
            formatter_class=formatter,
            parents=[common, *parents],
            **kwargs,
        )

    upload = command(
        "upload",
        "send what journals still hold",
        parents=[journal_dir],
        description="Send every call that journals still hold (runs made offline, or whose "
        "delivery was cut short), each exactly once. Runs that behave left open (killed, "
        "crashed) are closed as interrupted. A journal another process is delivering is "
        "skipped.",
    )
    upload.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR",
        help="journal directories, run ids or `latest` (default: every journal with unsent calls)",
    )
    upload.add_argument(
        "--timeout",
        type=_positive,
        default=120.0,
        metavar="S",
        help="stop after S seconds in all (default 120); what is unsent stays in the journal",
    )
    upload.set_defaults(func=cmd_upload)

    status = command(
        "status",
        "one line per journal",
        parents=[journal_dir],
        description="One line per journal: run id, when, what was journaled, how much the "
        "server acknowledged or refused, what is pending, and whether the run ended.",
    )
    status.add_argument("--json", action="store_true", help="a JSON list, one object per journal")
    status.set_defaults(func=cmd_status)

    clean = command(
        "clean",
        "remove fully delivered journals",
        parents=[journal_dir],
        description="Remove the journals whose calls the server acknowledged, every one "
        "(nothing pending, nothing refused). Journals with unsent or refused calls, and "
        "runs still going, are kept. After each behave run, fully delivered journals beyond "
        "the newest keep_journals (default 20) are removed automatically.",
    )
    clean.add_argument(
        "--all",
        action="store_true",
        help="also remove journals with unsent or refused calls (not those of running runs)",
    )
    clean.add_argument(
        "--dry-run", "-n", action="store_true", help="list what would be removed; remove nothing"
    )
    clean.set_defaults(func=cmd_clean)

    show = command(
        "show",
        "print a run from its journal, as a tree",
        parents=[journal_dir],
        description="Print a run from its journal: build, features, scenarios with their "
        "steps, hook runs and failures, as they are (or would be) sent. Works offline.",
    )
    show.add_argument(
        "run", nargs="?", default="latest", metavar="RUN_DIR", help="journal or run id (latest)"
    )
    show.add_argument("--logs", action="store_true", help="print the log entries too")
    show.set_defaults(func=cmd_show)

    doctor = command(
        "doctor",
        "check configuration, credentials and the connection",
        description="Print the resolved configuration, its problems, whether credentials "
        "are set, and check the way to the API host: DNS, TCP, proxy tunnel, TLS. Creates "
        "nothing in BrowserStack unless --live.",
    )
    doctor.add_argument(
        "--live",
        action="store_true",
        help=f"open and finish a tiny build ({DOCTOR_BUILD!r}, one passed test) and print its URL",
    )
    doctor.set_defaults(func=cmd_doctor)

    build = command(
        "build",
        "start or finish a build that several behave runs share",
        description="Start a build before parallel behave runs and finish it after them. "
        "Each behave run that finds BROWSERSTACK_BUILD_HASHED_ID reports into that build "
        "and does not finish it.\n\n"
        'eval "$(behave-bstack build start)"   ...   behave-bstack build finish',
    )
    build_commands = build.add_subparsers(dest="build_command", metavar="start|finish")
    start = build_commands.add_parser(
        "start",
        help="start a build; prints export BROWSERSTACK_BUILD_HASHED_ID=...",
        description=_wrap(
            "Start a build with the configured name and project and print its id "
            'as a shell export: eval "$(behave-bstack build start)".'
        ),
        epilog=EXIT_CODES,
        formatter_class=formatter,
        parents=[common],
    )
    start.add_argument("--name", help="build name (default: the build_name setting)")
    start.add_argument("--project", help="project name (default: the project_name setting)")
    start.add_argument(
        "--run-identifier",
        metavar="R",
        help="build_run_identifier: starts with the same project, name and R share one build",
    )
    start.add_argument("--json", action="store_true", help="print the id as JSON instead")
    start.set_defaults(func=cmd_build_start)
    finish = build_commands.add_parser(
        "finish",
        help="finish a build",
        description="Finish a build started with `behave-bstack build start`.",
        epilog=EXIT_CODES,
        formatter_class=formatter,
        parents=[common],
    )
    finish.add_argument(
        "build_id",
        nargs="?",
        metavar="ID",
        help="build id (default: $BROWSERSTACK_BUILD_HASHED_ID)",
    )
    finish.add_argument("--json", action="store_true", help="print the result as JSON")
    finish.set_defaults(func=cmd_build_finish)

    serve = command(
        "serve",
        "run the local TRA emulator in the foreground",
        description="Run a local emulator of the TRA API (it validates every call like the "
        "real contract) to try a setup offline. Prints the exports that point behave at it, "
        "then one line per API call it receives. Open its address in a browser to see the "
        "builds and tests it received; GET /_emulator/state?calls=1 gives them as JSON.",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address (127.0.0.1)")
    serve.add_argument("--user", default="bs_user", help="username it accepts (bs_user)")
    serve.add_argument("--key", default="bs_key", help="access key it accepts (bs_key)")
    serve.add_argument("--quiet", action="store_true", help="no line per received call")
    serve.set_defaults(func=cmd_serve)
    import_report.register(command)
    return parser


# --------------------------------------------------------------------------- main


def _early_secrets(argv: list[str], environ: Mapping[str, str]) -> list[str]:
    """Keys known before the settings are: so that even an argument error hides them."""
    found = [environ.get("BROWSERSTACK_ACCESS_KEY", "")]
    for item in argv:
        if "bstack.access_key=" in item:
            found.append(item.split("bstack.access_key=", 1)[1])
    return [secret.strip() for secret in found if secret.strip()]


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    console = Console(stdout or sys.stdout, stderr or sys.stderr)
    for secret in _early_secrets(argv, environ):
        console.hide(secret)
    debug = "--debug" in argv
    logger = logging.getLogger("behave_bstack")
    handler: logging.Handler = _LogHandler(console) if debug else logging.NullHandler()
    logger.addHandler(handler)
    saved = (logger.level, logger.propagate)
    # Delivery logs every refused call; the command prints its own summary instead.
    logger.setLevel(logging.DEBUG if debug else logging.CRITICAL)
    logger.propagate = False
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            where = f"{PROG} build" if args.command == "build" else PROG
            raise CliError(f"choose a command (see {where} --help)", EXIT_USAGE, where)
        userdata = {**behave_userdata(cwd, environ.get("HOME")), **parse_defines(args.defines)}
        settings = load_settings(userdata, environ, cwd)
        console.hide(settings.access_key)
        if settings.debug and not debug:  # BSTACK_DEBUG / -D bstack.debug, as in behave runs
            debug = True
            logger.removeHandler(handler)
            handler = _LogHandler(console)
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)
        return args.func(Context(args, console, settings, cwd, environ))
    except CliError as exc:
        console.err(f"{PROG}: {exc}")  # one prefix for every message (README "Messages")
        return exc.code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except BrokenPipeError:  # `behave-bstack show | head`: the reader left, nothing to say
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAILED
    except KeyboardInterrupt:
        console.err(f"{PROG}: interrupted; what was not sent stays in the journal")
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            console.err(traceback.format_exc().rstrip())
        console.err(
            f"{PROG}: internal error: {type(exc).__name__}: {exc}"
            + ("" if debug else " (run with --debug for the traceback)")
        )
        return EXIT_FAILED
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
