"""The body of a build start: the build's name and project, and where it ran (CI, git,
host).  Used by the behave process (recording/session.py) and by `behave-bstack import`,
so that an imported report's build says the same as a live run's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from ..base.version import __version__
from . import ci, host, vcs


def journal_meta(settings, cwd: str, owns_build: bool, coordination: dict | None) -> dict:
    """The journal's first record: who wrote it, where it goes, whether it starts the build
    (a behave run and `behave-bstack import` write the same)."""
    return {
        "version": __version__,
        "api_url": settings.api_url,
        "project_name": settings.project_name,
        "build_name": settings.build_name,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "cwd": cwd,
        "owns_build": owns_build,
        "build_hashed_id": settings.build_hashed_id,
        "coordination": coordination,
    }


def build_start_body(
    settings,
    environ: Mapping[str, str],
    cwd: str,
    repo_root: str | None,
    started_at: int,
    run_identifier: str | None,
    framework: dict | None = None,
) -> dict:
    """`started_at`: epoch ms; `framework`: {"name", "version"} (default: this behave)."""
    body = {
        "name": settings.build_name,
        "project_name": settings.project_name,
        "started_at": started_at,
        "framework": framework or {"name": "behave", "version": host.behave_version()},
        "host_info": host.host_info(),
    }
    if settings.build_tags:
        body["tags"] = list(settings.build_tags)
    if run_identifier:
        body["build_run_identifier"] = run_identifier
    ci_info = ci.detect_ci(environ)
    if ci_info:
        body["ci_info"] = ci_info
    git = vcs.git_info(repo_root or cwd) if repo_root else None
    if git:
        body["version_control"] = git
    return body
