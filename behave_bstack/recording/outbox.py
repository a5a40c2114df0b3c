"""The outbox: where the behave process puts events, and who carries them away.

On the test thread an event costs one fit_payload() and one os.write() to the journal.
Everything that touches the network runs in the uploader process (uploader.py), which
follows the journal; this keeps HTTP's CPU off behave's interpreter entirely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ..base import portable
from ..journal import store as journal

# The folder that holds behave_bstack/ (this file is behave_bstack/recording/outbox.py):
# the uploader imports the same copy of the package as behave did.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class Outbox:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.writer = journal.JournalWriter(self.run_dir)
        self.uploader: subprocess.Popen | None = None
        self.errors: list[str] = []

    # -- writing ----------------------------------------------------------------
    def emit(
        self,
        op: str,
        body: dict,
        ref: str | None = None,
        links: dict | None = None,
        extras: dict | None = None,
    ) -> None:
        """Journal one call as a draft (see finalize.py).  `links` are fields holding
        {"$ref": ...} placeholders for server ids; `extras` are the compact parts that
        readers expand (drafts.py)."""
        if links:
            body.update(links)
        self.writer.append(op, body, ref, **(extras or {}))

    def emit_raw(self, op: str, body: dict | None = None) -> None:
        self.writer.append(op, body)

    def internal_error(self, exc: BaseException) -> None:
        """A bug of ours: remember it for the summary, never raise."""
        if len(self.errors) < 5:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    # -- delivery ---------------------------------------------------------------
    def start_uploader(self, options: dict) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
        with os.fdopen(journal.open_private(self.run_dir / "uploader.err"), "ab") as err:
            self.uploader = subprocess.Popen(
                [sys.executable, "-m", "behave_bstack.delivery.uploader", str(self.run_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                close_fds=True,
                # Its own session / process group: a Ctrl-C goes to behave, which stops us
                # in order.
                **portable.uploader_process_options(),
            )
        # One line of settings; the pipe stays open: "stop" stops the uploader, and its
        # end (however behave ends) tells it that behave is gone (uploader.py).
        line = json.dumps({**options, "parent_pid": os.getpid()}) + "\n"
        self.uploader.stdin.write(line.encode())
        self.uploader.stdin.flush()

    def _stop_uploader(self) -> None:
        """Ask the uploader to stop: it stops sending, writes its report and exits.  The
        same on every platform (on Windows terminate() would kill it before it wrote its
        report)."""
        try:
            self.uploader.stdin.write(b"stop\n")
            self.uploader.stdin.flush()
        except (OSError, ValueError):
            pass  # it is gone already
        self._close_pipe()

    def _close_pipe(self) -> None:
        try:
            self.uploader.stdin.close()
        except (OSError, ValueError):
            pass

    def _wait_for_uploader(self, timeout: float) -> None:
        """Until the uploader exits, or reports that only a build finish waiting for other
        processes is left (it then stays, detached, to send it)."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while self.uploader.poll() is None:
            report = journal.read_report(self.run_dir)
            if report is not None and report.get("waiting"):
                return
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.uploader.args, timeout)
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    def close(self, flush_timeout: float) -> dict | None:
        """End the journal, give delivery up to flush_timeout seconds, return its report."""
        self.writer.append("end")
        self.writer.close()
        if self.uploader is None:
            return None
        try:
            self._wait_for_uploader(max(0.0, flush_timeout))
        except subprocess.TimeoutExpired:
            self._stop_uploader()  # it stops sending, writes its report and exits
            try:
                self.uploader.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.uploader.kill()
                self.uploader.wait()
        self._close_pipe()  # a keeper that stays reads the pipe's end: behave is gone
        deadline = time.monotonic() + 1
        report = journal.read_report(self.run_dir)
        while report is None and time.monotonic() < deadline:
            time.sleep(0.02)
            report = journal.read_report(self.run_dir)
        return report
