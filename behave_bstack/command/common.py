"""What every `behave-bstack` command shares: the program name and exit codes, CliError,
Console (stdout/stderr that hide the access key), Context (a command's arguments,
settings and streams) and resolve_run (a journal named by path, run id or `latest`).

Runs in the command's process.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..journal import store as journal
from ..settings.config import Settings
from . import journal_view

PROG = "behave-bstack"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CREDENTIALS = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  ok
  1  something failed or is still pending
  2  usage or configuration error
  3  BrowserStack refused the credentials"""


class CliError(Exception):
    """Ends the command with one line on stderr and an exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE, prog: str = PROG) -> None:
        super().__init__(message)
        self.code = code
        self.prog = prog


class Console:
    """stdout/stderr that never show a secret it was told about."""

    def __init__(self, stdout: TextIO, stderr: TextIO) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.secrets: set[str] = set()

    def hide(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:  # shorter ones would mangle ordinary text
            self.secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "****")
        return text

    def out(self, line: str = "") -> None:
        self.stdout.write(self.scrub(line) + "\n")
        self.stdout.flush()

    def err(self, line: str) -> None:
        self.stderr.write(self.scrub(line) + "\n")
        self.stderr.flush()


@dataclass
class Context:
    args: argparse.Namespace
    console: Console
    settings: Settings
    cwd: str
    environ: Mapping[str, str]

    @property
    def out(self) -> Callable[[str], None]:
        return self.console.out

    @property
    def err(self) -> Callable[[str], None]:
        return self.console.err

    def journal_dir(self) -> Path:
        chosen = getattr(self.args, "journal_dir", None) or self.settings.journal_dir
        return Path(self.cwd, os.path.expanduser(chosen))

    def warn_problems(self) -> None:
        for problem in self.settings.problems:
            self.err(f"{PROG}: {problem}")


def resolve_run(spec: str, journal_dir: Path, cwd: str) -> Path:
    """A journal named by path, by run id (under the journal dir), or "latest"."""
    if spec == "latest":
        found = journal_view.latest_run(journal_dir)
        if found is None:
            raise CliError(f"no journals in {journal_dir}")
        return found
    for candidate in (Path(cwd, os.path.expanduser(spec)), journal_dir / spec):
        if (candidate / journal.EVENTS).is_file():
            return candidate
    raise CliError(
        f"no journal at {spec} (looked for {journal.EVENTS} there and in {journal_dir}); "
        f"`{PROG} status` lists them"
    )
