"""Settings for behave-bstack, resolved from the places users already configure BrowserStack.

Sources, highest first:

1. behave userdata keys ``bstack.<setting>`` (``-D bstack.x=y``, ``[behave.userdata]``,
   ``[tool.behave.userdata]``); values are always strings;
2. environment variables (BrowserStack's own names, plus ``BSTACK_*`` for this package's knobs);
3. ``browserstack.yml`` / ``browserstack.yaml`` in the working directory, or the file named by
   ``BROWSERSTACK_CONFIG_FILE`` (or ``-D bstack.config_file``);
4. generic environment variables that are not BrowserStack's (``HTTP_PROXY``, ``HTTPS_PROXY``,
   ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``): a setting written for BrowserStack
   in browserstack.yml is more specific than a machine-wide default;
5. defaults.

``load_settings`` never raises on bad input: each bad value becomes one line in
``Settings.problems`` (naming the setting and where it came from) and the next source, or the
default, is used instead. A reporter must never stop a test run because of its configuration.

The access key never appears in ``repr()``, ``describe()``, ``problems`` or an exception.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from ..base.defaults import DEFAULT_CONCURRENCY
from .project import project_root
from .resolver import Resolver
from .specs import (
    DATE_TIME_FORMAT,
    DEFAULT_API_URL,
    DEFAULT_FLUSH_TIMEOUT,
    DEFAULT_JOURNAL_DIR,
    DEFAULT_KEEP_JOURNALS,
    DEFAULT_REQUEST_TIMEOUT,
    ENVIRONMENT_KEYS,
    PREFIX,
    STEP_HOOKS_CHOICES,
    USERDATA_KEYS,
    Settings,
)

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_JOURNAL_DIR",
    "DATE_TIME_FORMAT",
    "ENVIRONMENT_KEYS",
    "STEP_HOOKS_CHOICES",
    "Settings",
    "USERDATA_KEYS",
    "load_settings",
]


def load_settings(
    userdata: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    *,
    now: datetime | None = None,
) -> Settings:
    """Resolve every setting. Never raises; see `Settings.problems` for what was wrong.

    `now` (local time) is what ${DATE_TIME} expands to; it defaults to the current time.
    """
    environ = os.environ if environ is None else environ
    cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
    try:
        return Resolver(userdata or {}, environ, cwd, now or datetime.now()).settings()
    except Exception as exc:  # a bug here must not stop the test run
        where = traceback.extract_tb(exc.__traceback__)[-1]
        problem = (
            f"{PREFIX}internal error while reading settings ({type(exc).__name__} at "
            f"{os.path.basename(where.filename)}:{where.lineno}); using defaults"
        )
        return _default_settings(cwd, problem)


# --------------------------------------------------------------------------- resolution


def _default_settings(cwd: str, problem: str) -> Settings:
    root = project_root(cwd)
    name = os.path.basename(root.rstrip(os.sep)) or "behave"
    return Settings(
        enabled=True,
        username=None,
        access_key=None,
        api_url=DEFAULT_API_URL,
        api_url_ok=True,
        project_name=name,
        build_name=name,
        build_identifier=None,
        build_run_identifier=None,
        build_hashed_id=None,
        build_tags=(),
        journal_dir=os.path.join(root, DEFAULT_JOURNAL_DIR),
        keep_journals=DEFAULT_KEEP_JOURNALS,
        flush_timeout=DEFAULT_FLUSH_TIMEOUT,
        request_timeout=DEFAULT_REQUEST_TIMEOUT,
        concurrency=DEFAULT_CONCURRENCY,
        logs=True,
        step_hooks="failed",
        report_excluded=False,
        http_proxy=None,
        https_proxy=None,
        no_proxy=None,
        ca_bundle=None,
        environment={},
        debug=False,
        config_file=None,
        sources=MappingProxyType({}),
        problems=(problem,),
        project_root=root,
    )
