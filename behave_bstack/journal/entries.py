"""Log entry drafts as the journal holds them: text entries split into parts, and
attachment entries whose bytes are kept in the journal's attachments/ folder.

Shared by the behave process (recording/capture.py, the tracker) and `behave-bstack
import` (importing/), so that an imported report's logs and attachments look exactly like
a live run's.
"""

from __future__ import annotations

import base64
import os
import re

from ..base.private_dirs import NOFOLLOW

MESSAGE_PART = 9000  # below the API's 10,000 so that cleaning never needs to split again
INLINE_LIMIT = 9000  # characters of an attachment's content that travel in `message`


def log_entries(kind: str, link: dict, entries: list[tuple[int, str, str]]) -> list[dict]:
    """API log entries (drafts) for a run; long messages split into numbered parts."""
    out = []
    for epoch_ms, level, message in entries:
        parts = [message[i : i + MESSAGE_PART] for i in range(0, len(message), MESSAGE_PART)]
        for index, part in enumerate(parts):
            text = part if len(parts) == 1 else f"[part {index + 1}/{len(parts)}] {part}"
            out.append(
                {"kind": kind, **link, "timestamp": epoch_ms, "level": level, "message": text}
            )
    return out


def attachment_entry(writer, number: int, data: bytes, name, mime_type: str, epoch_ms: int) -> dict:
    """A TEST_SCREENSHOT / TEST_ATTACHMENT log entry; the bytes stay in the journal
    (`writer`: the journal's JournalWriter)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "attachment")[:80] or "attachment"
    path = writer.attachment_path(f"{number:05d}-{safe}")
    binary = getattr(os, "O_BINARY", 0)  # Windows: else "\n" is written as "\r\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW | binary, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    is_image = mime_type.startswith("image/")
    if mime_type.startswith("text/") or mime_type in ("application/json", "application/xml"):
        content = data.decode("utf-8", "replace")
    else:
        content = f"data:{mime_type};base64," + base64.b64encode(data).decode("ascii")
    if len(content) > INLINE_LIMIT:
        content = (
            f"{name or safe} ({len(data)} bytes, {mime_type}) is too large to travel inline; "
            f"kept at {path}"
        )
    return {
        "kind": "TEST_SCREENSHOT" if is_image else "TEST_ATTACHMENT",
        "timestamp": epoch_ms,
        "level": "INFO",
        "message": content,
        "file_name": name or safe,
        "file_size": len(data),
        "attachment_type": "SCREENSHOT" if is_image else "MANUAL_UPLOAD",
    }
