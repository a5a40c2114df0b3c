"""The uploader process starts without what it does not need at once: behave starts it
for every run, and it shares the machine with the tests."""

from __future__ import annotations

import subprocess
import sys

LATER_OR_NEVER = (
    "behave",  # parsed feature files only: imported when the first one is described
    "behave_bstack.settings.config",  # the behave process's settings
    "urllib.request",  # proxy settings: never for a loopback API
)


def test_the_uploader_imports_only_what_it_needs_at_once():
    probe = (
        "import sys, behave_bstack.delivery.uploader; "
        f"print([m for m in {LATER_OR_NEVER!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
