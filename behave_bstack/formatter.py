"""The behave formatter: a thin, guarded adapter from behave's callbacks to the tracker.

behave lets any exception raised in a formatter end the whole run (behave-notes.md §3),
so every callback is guarded: a failure in reporting is noted for the summary and the
run goes on exactly as it would without us.
"""

from __future__ import annotations

import os

from behave.formatter.base import Formatter

from .recording.hookwatch import find_runner
from .recording.session import ReportingSession, warn


def output_file_named(stream_opener) -> str | None:
    """The file a user paired with this formatter (`-f bstack -o FILE`), if any.  behave
    itself names one, `<format>.output`, for a `format = bstack` in a config file without
    `outfiles`: that one was not asked for, and is not mentioned."""
    name = getattr(stream_opener, "name", None)
    if not name or name == "-":
        return None
    base = os.path.basename(str(name))
    if base.endswith(".output") and "bstack" in base.lower():
        return None
    return str(name)


class BstackFormatter(Formatter):
    name = "bstack"
    description = "Reports the run to BrowserStack Test Reporting & Analytics"

    def __init__(self, stream_opener, config) -> None:
        super().__init__(stream_opener, config)
        self.session: ReportingSession | None = None
        output = output_file_named(stream_opener)
        if output:
            warn(
                f"behave-bstack: -o {output}: behave-bstack writes no file (it reports to "
                "BrowserStack and prints its summary on stderr); no file is created"
            )
        try:
            self.session = ReportingSession.create(config, find_runner())
            if self.session is not None:
                self.session.tracker.formatter = self
        except Exception as exc:  # noqa: BLE001
            warn(f"behave-bstack: reporting is off for this run: {type(exc).__name__}: {exc}")

    def _call(self, method: str, *args) -> None:
        session = self.session
        if session is not None:
            session.tracker.guard(getattr(session.tracker, method), *args)

    # behave's callbacks -----------------------------------------------------------
    def uri(self, uri) -> None:
        pass

    def feature(self, feature) -> None:
        self._call("feature_started", feature)

    def background(self, background) -> None:
        pass

    def rule(self, rule) -> None:
        self._call("rule_started", rule)

    def rule_finished(self) -> None:
        self._call("finish_current")

    # The calls made for every scenario and step are guarded inline: they are the hot path.
    def scenario(self, scenario) -> None:
        session = self.session
        if session is not None:
            try:
                session.tracker.scenario_announced(scenario)
            except Exception as exc:  # noqa: BLE001
                session.outbox.internal_error(exc)

    def step(self, step) -> None:
        session = self.session
        if session is not None:
            # The steps behave runs and reports, after before_scenario (tracker.TestRun).
            run = session.tracker.current
            if run is not None:
                run.steps.append(step)

    def match(self, match) -> None:
        session = self.session
        if session is not None:
            try:
                session.tracker.step_matched()
            except Exception as exc:  # noqa: BLE001
                session.outbox.internal_error(exc)

    def result(self, step) -> None:
        session = self.session
        if session is not None:
            try:
                session.tracker.step_finished(step)
            except Exception as exc:  # noqa: BLE001
                session.outbox.internal_error(exc)

    def embedding(self, mime_type, data) -> None:
        """behave >= 1.3: context.attach(mime_type, data)."""
        session = self.session
        if session is not None:
            payload = data if isinstance(data, (bytes, bytearray)) else str(data).encode("utf-8")
            session.tracker.guard(session.tracker.attach, bytes(payload), None, str(mime_type))

    def eof(self) -> None:
        self._call("feature_finished")

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.close()
            except Exception as exc:  # noqa: BLE001
                warn(f"behave-bstack: could not finish reporting: {type(exc).__name__}: {exc}")
        # behave's own stream handling (we never open an output file ourselves).
        try:
            super().close()
        except Exception:  # noqa: BLE001
            pass
