"""What step code and environment.py can call.

    import behave_bstack
    behave_bstack.set_custom_metadata(context, "owner", "alice")
    behave_bstack.set_environment(context, browser="chrome", browser_version="120")
    behave_bstack.attach(context, png_bytes, name="checkout.png")   # or a file path

Each call applies to what is running when it is made: inside a scenario (its steps or
scenario hooks), to that test; in before_feature/before_rule, to every test of that
feature; in before_all, to every test of the run.  With reporting off, or outside a
behave run, the calls do nothing.  They never raise.
"""

from __future__ import annotations

import mimetypes
import os

_session = None  # the ReportingSession of this process's behave run, while it lives
# Sessions of behave runs started inside a step of another (each with -f bstack): the
# innermost one is the running one; when it ends, the outer one is again.
_sessions: list = []


def activate(session) -> None:
    global _session
    _sessions.append(session)
    _session = session


def deactivate(session) -> None:
    global _session
    if session in _sessions:
        _sessions.remove(session)
    _session = _sessions[-1] if _sessions else None


def _tracker():
    return _session.tracker if _session is not None else None


def set_custom_metadata(context, key: str, *values) -> None:
    """Add values under a custom_metadata key (TRA keeps up to 25 keys x 10 values)."""
    tracker = _tracker()
    if tracker is not None:
        tracker.guard(tracker.add_metadata, str(key), [str(v) for v in values])


def set_environment(context, **fields) -> None:
    """Set device, os, os_version, browser or browser_version (e.g. from WebDriver
    capabilities once the session exists); overrides the configured values."""
    tracker = _tracker()
    if tracker is not None:
        known = {k: str(v) for k, v in fields.items() if v is not None}
        tracker.guard(tracker.set_environment, known)


def attach(context, data_or_path, name: str | None = None, mime_type: str | None = None) -> None:
    """Attach bytes, text or a file to the running test or hook (a screenshot when the
    type is an image).  behave >= 1.3's own context.attach(mime_type, data) works too."""
    tracker = _tracker()
    if tracker is None:
        return
    try:
        if isinstance(data_or_path, (bytes, bytearray)):
            data = bytes(data_or_path)
        elif isinstance(data_or_path, str) and os.path.isfile(data_or_path):
            with open(data_or_path, "rb") as handle:
                data = handle.read()
            name = name or os.path.basename(data_or_path)
        else:
            data = str(data_or_path).encode("utf-8")
            mime_type = mime_type or "text/plain"
        if mime_type is None and name:
            mime_type = mimetypes.guess_type(name)[0]
        tracker.guard(tracker.attach, data, name, mime_type or "application/octet-stream")
    except Exception as exc:  # noqa: BLE001 - an unreadable file must not fail the step
        if _session is not None:
            _session.outbox.internal_error(exc)
