"""Defaults that both the behave process's settings (config.py) and the uploader process
use.  A module of its own, importing nothing, so that the uploader starts without loading
config.py and all it imports."""

from __future__ import annotations

DEFAULT_CONCURRENCY = 32  # calls in flight at once
