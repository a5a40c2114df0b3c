"""One reporting session per behave run: wires settings, journal, tracker and uploader."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from ..base import private_dirs
from ..base.clock import Clock
from ..journal import coordination
from ..journal import store as journal
from ..origin import ci, vcs
from ..origin.build import build_start_body, journal_meta
from ..settings.config import Settings, load_settings
from . import api
from .capture import OutputCapture
from .hookwatch import install, watch_cleanups, wrap_scenario_runs
from .outbox import Outbox
from .payloads import Payloads
from .summary import internal_error_lines, offline_line, summary_lines
from .tracker import Tracker


def warn(line: str) -> None:
    """One line on stderr; stdout stays behave's."""
    try:
        sys.stderr.write(line.rstrip("\n") + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed stderr must not break the run
        pass


def open_outbox(settings: Settings, cwd: str) -> Outbox:
    """The journal goes to the configured directory; if that cannot be written, to this
    user's directory in the system's temporary directory, or to a fresh private one when
    that is not safe to use (private_dirs), with one line that says so."""
    run_id = journal.new_run_id()
    base = Path(settings.journal_dir)
    if not base.is_absolute():
        base = Path(cwd) / base
    try:
        return Outbox(base / run_id)
    except OSError as exc:
        fallback, refused = private_dirs.journal_fallback(run_id)
        why = f"; not using {refused}" if refused else ""
        warn(
            f"behave-bstack: cannot write the journal in {base} ({exc.strerror}){why}; "
            f"using {fallback}"
        )
        return Outbox(fallback)


class ReportingSession:
    def __init__(self, settings: Settings, behave_config, runner, cwd: str) -> None:
        self.settings = settings
        self.cwd = cwd
        self.clock = Clock()
        self.started_ns = self.clock.now()
        self.outbox = open_outbox(settings, cwd)
        self._own_logging()
        repo_root = vcs.repo_root(cwd)
        self.payloads = Payloads(
            cwd, repo_root, settings.environment, root=settings.project_root or cwd
        )
        self.tracker = Tracker(
            self.payloads,
            self.outbox,
            self.clock,
            step_hooks=settings.step_hooks,
            report_excluded=settings.report_excluded,
        )
        self.tracker.runner = runner
        self.tracker.config = behave_config
        self.owns_build = not settings.build_hashed_id
        self.live = settings.has_credentials and settings.api_url_ok
        self.outer_pid = coordination.behavex_parent(getattr(behave_config, "userdata", None))
        self.run_identifier = self._run_identifier()
        self.participation = None
        # Processes on this machine share a build through an explicit identifier, or as
        # the workers of one behavex run; a CI-derived one names shards on other machines.
        if self.owns_build and (settings.build_run_identifier or self.outer_pid):
            key = coordination.build_key(
                settings.project_name, settings.build_name, self.run_identifier
            )
            self.participation = self._participate(key)
        self._journal_start(repo_root)
        tracker = self.tracker
        self._unwrap_runs = wrap_scenario_runs(
            tracker.scenario_entered, tracker.scenario_left, self.outbox.internal_error
        )
        if runner is not None:
            install(runner, self.tracker.on_hook)
            watch_cleanups(
                runner, lambda func, exc: self.tracker.guard(self.tracker.cleanup_failed, func, exc)
            )
        if settings.logs:
            self.tracker.capture = OutputCapture(self.tracker.current_sink, self.clock.epoch_ms)
            self.tracker.capture.install()
        if self.live:
            self.outbox.start_uploader(self.uploader_options())
        api.activate(self)

    def _participate(self, key: str) -> coordination.Participation | None:
        """Register with the other processes of this build run; where the platform cannot
        (no file locks, no usable temp directory), one line, and this process finishes
        the build itself, as a CI shard on another machine does."""
        try:
            return coordination.Participation(key, outer_pid=self.outer_pid)
        except private_dirs.Refused as exc:
            warn(
                f"behave-bstack: not using {exc}; this process finishes the build "
                "without waiting for the others of its run"
            )
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. LocksUnavailable, a missing os call
            why = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
            warn(
                "behave-bstack: no cross-process build coordination here "
                f"({why}): this process finishes the build itself"
            )
            return None

    def _own_logging(self) -> None:
        """Our log lines go to the journal's debug.log (with bstack.debug) and nowhere
        else: never to the console, so they are never captured into the user's logs."""
        logger = logging.getLogger("behave_bstack")
        logger.propagate = False
        logger.handlers[:] = [logging.NullHandler()]
        if self.settings.debug:
            debug_log = journal.private_file(self.outbox.run_dir / "debug.log")
            handler = logging.FileHandler(debug_log, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)

    @classmethod
    def create(cls, behave_config, runner) -> ReportingSession | None:
        userdata = getattr(behave_config, "userdata", None) or {}
        settings = load_settings(dict(userdata), os.environ, os.getcwd())
        for problem in settings.problems:
            warn(f"behave-bstack: {problem}")
        if not settings.enabled:
            return None
        if getattr(behave_config, "dry_run", False):
            warn("behave-bstack: --dry-run: nothing is reported to BrowserStack")
            return None
        return cls(settings, behave_config, runner, os.getcwd())

    def _run_identifier(self) -> str | None:
        """Explicit, else from the CI's parallel run, else one per behavex run."""
        found = self.settings.build_run_identifier or ci.ci_run_identifier(os.environ)
        if not found and self.outer_pid:
            ticks = coordination.process_start_ticks(self.outer_pid)
            found = f"behavex-{socket.gethostname()}-{self.outer_pid}-{ticks}"[:64]
        return found

    def _journal_start(self, repo_root: str | None) -> None:
        settings = self.settings
        coordination = None
        if self.participation:
            coordination = {"dir": str(self.participation.directory), "outer_pid": self.outer_pid}
        self.outbox.emit_raw(
            "meta", journal_meta(settings, self.cwd, self.owns_build, coordination)
        )
        if self.owns_build:
            self.outbox.emit("build_start", self.build_start_body(repo_root), "build")

    def build_start_body(self, repo_root: str | None) -> dict:
        return build_start_body(
            self.settings,
            os.environ,
            self.cwd,
            repo_root,
            self.clock.epoch_ms(self.started_ns),
            self.run_identifier,
        )

    def _finish_build(self) -> None:
        """Finish the build, unless another process of the same build run is still going."""
        decision = self.participation.leave() if self.participation else coordination.FINISH
        body = {"finished_at": self.clock.epoch_ms()}
        if decision == coordination.FINISH:
            self.outbox.writer.append("build_finish", body, "build")
        elif decision == coordination.KEEP:
            wait = {"dir": str(self.participation.directory), "pid": self.outer_pid}
            self.outbox.writer.append("build_finish", body, "build", wait=wait)
            if not self.live:
                coordination.release_keeper(wait["dir"])  # `upload` will finish it later
        else:
            self.outbox.writer.append("build_finish_left")  # another process finishes it

    def uploader_options(self) -> dict:
        s = self.settings
        return {
            "api_url": s.api_url,
            "username": s.username,
            "access_key": s.access_key,
            "request_timeout": s.request_timeout,
            "concurrency": s.concurrency,
            "ca_bundle": s.ca_bundle,
            "https_proxy": s.https_proxy,
            "http_proxy": s.http_proxy,
            "no_proxy": s.no_proxy,
            "debug": s.debug,
            "orphan_timeout": max(60.0, s.flush_timeout),
        }

    def close(self) -> None:
        api.deactivate(self)
        self._unwrap_runs()
        self.tracker.guard(self.tracker.run_finished)
        if self.tracker.capture is not None:
            self.tracker.capture.uninstall()
        if self.owns_build:
            self._finish_build()
        report = self.outbox.close(self.settings.flush_timeout if self.live else 0)
        if self.live:
            lines = summary_lines(report, self.tracker.counts, self.outbox, self.settings)
        else:
            lines = [offline_line(self.settings, self.outbox, self.tracker.counts)]
            lines += internal_error_lines(self.outbox)
        for line in lines:
            warn(line)
        from ..journal.housekeeping import prune  # after the summary: it never delays it

        prune(self.outbox.run_dir.parent, self.settings.keep_journals)
