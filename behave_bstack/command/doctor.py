"""`behave-bstack doctor`: the resolved configuration and its problems, the credentials,
the way to the API host (probes.py), and with --live a tiny real build.

Runs in the command's process.
"""

from __future__ import annotations

from ..base.version import __version__
from ..delivery.routes import build_url
from ..origin import host
from ..settings.config import Settings
from .common import EXIT_CREDENTIALS, EXIT_FAILED, EXIT_OK, PROG, CliError, Context
from .probes import Check, network_checks
from .sending import NO_CREDENTIALS, make_client, now_ms, send

DOCTOR_BUILD = "behave-bstack doctor"


def live_check(settings: Settings) -> str:
    """doctor --live: a tiny real build (one passed test) through Transport; its URL."""
    client = make_client(settings)
    scopes = [DOCTOR_BUILD]
    try:
        started = now_ms()
        build = {
            "name": DOCTOR_BUILD,
            "project_name": settings.project_name,
            "started_at": started,
            "framework": {"name": "behave", "version": host.behave_version()},
            "tags": ["behave-bstack-doctor"],
        }
        build_id = send(client, "build_start", build)["build_hashed_id"]
        test = {
            "name": "behave-bstack can report",
            "file_name": "behave-bstack-doctor",
            "scopes": scopes,
            "started_at": now_ms(),
        }
        test_id = send(client, "test_start", test, build=build_id)["uuid"]
        finished = {
            "result": "passed",
            "finished_at": now_ms(),
            "file_name": "behave-bstack-doctor",
            "scopes": scopes,
            "duration_in_ms": 1,
        }
        send(client, "test_finish", finished, build=build_id, target=test_id)
        send(client, "build_finish", {"finished_at": now_ms()}, build=build_id)
    finally:
        client.close()
    return build_url(build_id, settings.api_url)


def cmd_doctor(ctx: Context) -> int:
    settings = ctx.settings
    rows = [("setting", "value", "source")] + [tuple(r) for r in settings.describe()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    ctx.out(f"{PROG} {__version__}: resolved configuration (highest source wins)")
    for name, value, source in rows:
        ctx.out(f"  {name:<{widths[0]}}  {value:<{widths[1]}}  {source}")
    ctx.out("")
    ctx.out("problems:" + ("" if settings.problems else " none"))
    for problem in settings.problems:
        ctx.out(f"  - {problem}")
    if not settings.enabled:
        ctx.out(f"note: reporting is switched off ({settings.sources.get('enabled')})")
    if settings.build_hashed_id:
        ctx.out(
            f"note: behave runs report into build {settings.build_hashed_id} and do not "
            "finish it (BROWSERSTACK_BUILD_HASHED_ID)"
        )

    ready = True
    if settings.has_credentials:
        ctx.out(
            f"credentials: username {settings.username!r} ({settings.sources.get('username')}),"
            f" access key set ({settings.sources.get('access_key')})"
        )
    else:
        ctx.out(f"credentials: MISSING: {NO_CREDENTIALS}")
        ready = False

    ctx.out("")
    ctx.out(f"connection to {settings.api_url}:")
    checks: list[Check] = []
    if not settings.api_url_ok:
        detail = next((p for p in settings.problems if "api_url" in p or "API" in p), "")
        checks.append(Check("URL", False, f"not allowed: {detail or settings.api_url}"))
    else:
        checks = network_checks(settings)
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "    "}[check.ok]
        ctx.out(f"  {mark}  {check.name:<6}  {check.detail}")
    reachable = all(check.ok is not False for check in checks)
    ready = ready and reachable

    code = EXIT_OK
    if ctx.args.live:
        if not (settings.has_credentials and reachable):
            ctx.out("live check: not run (fix the items above first)")
        else:
            try:
                url = live_check(settings)
                ctx.out(f"live check: ok: opened and finished a build: {url}")
            except CliError as exc:
                ctx.out(f"live check: FAIL: {exc}")
                ready = False
                code = exc.code if exc.code == EXIT_CREDENTIALS else EXIT_FAILED
    else:
        ctx.out(
            "credentials not checked against BrowserStack; `behave-bstack doctor --live` "
            "checks them by opening a tiny build"
        )
    ctx.out("")
    ctx.out("result: " + ("ready to report" if ready else "NOT ready (see above)"))
    if code == EXIT_OK and not ready:
        code = EXIT_FAILED
    return code
