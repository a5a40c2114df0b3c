"""`behave-bstack build start|finish`: a build that several behave runs share (they find
its id in BROWSERSTACK_BUILD_HASHED_ID, report into it and leave it open).

Runs in the command's process.
"""

from __future__ import annotations

import json
import shlex

from ..delivery.routes import build_url
from .common import EXIT_OK, PROG, CliError, Context
from .sending import make_client, need_sending_settings, now_ms, send

HASHED_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def cmd_build_start(ctx: Context) -> int:
    from ..origin import ci, host, vcs

    need_sending_settings(ctx)
    ctx.warn_problems()
    settings, args = ctx.settings, ctx.args
    body: dict = {
        "name": args.name or settings.build_name,
        "project_name": args.project or settings.project_name,
        "started_at": now_ms(),
        "framework": {"name": "behave", "version": host.behave_version()},
        "host_info": host.host_info(),
    }
    if settings.build_tags:
        body["tags"] = list(settings.build_tags)
    run_identifier = (
        args.run_identifier or settings.build_run_identifier or ci.ci_run_identifier(ctx.environ)
    )
    if run_identifier:
        body["build_run_identifier"] = run_identifier
    ci_info = ci.detect_ci(ctx.environ)
    if ci_info:
        body["ci_info"] = ci_info
    root = vcs.repo_root(ctx.cwd)
    git = vcs.git_info(root, environ=ctx.environ) if root else None
    if git:
        body["version_control"] = git
    client = make_client(settings)
    try:
        build_id = send(client, "build_start", body)["build_hashed_id"]
    finally:
        client.close()
    url = build_url(build_id, settings.api_url)
    if args.json:
        ctx.out(json.dumps({"build_hashed_id": build_id, "build_url": url}))
    else:
        ctx.out(f"export BROWSERSTACK_BUILD_HASHED_ID={shlex.quote(build_id)}")
        ctx.err(f"{PROG}: started build {url}; behave runs with this variable report into it")
        ctx.err(f"{PROG}: finish it with: {PROG} build finish")
    return EXIT_OK


def cmd_build_finish(ctx: Context) -> int:
    need_sending_settings(ctx)
    build_id = ctx.args.build_id or ctx.settings.build_hashed_id
    if not build_id:
        raise CliError("which build? give its id or set BROWSERSTACK_BUILD_HASHED_ID")
    if not set(build_id) <= HASHED_ID_CHARS or len(build_id) > 128:
        raise CliError(f"{build_id!r} is not a build id (letters, digits, '-' and '_' only)")
    client = make_client(ctx.settings)
    try:
        send(client, "build_finish", {"finished_at": now_ms()}, build=build_id)
    finally:
        client.close()
    url = build_url(build_id, ctx.settings.api_url)
    if ctx.args.json:
        ctx.out(json.dumps({"build_hashed_id": build_id, "build_url": url, "finished": True}))
    else:
        ctx.out(f"finished build {build_id}: {url}")
    return EXIT_OK
