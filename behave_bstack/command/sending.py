"""The command's own calls to TRA (build start/finish, doctor --live), outside any
journal: the settings they need, a client, one call and the check of its answer.

Runs in the command's process.
"""

from __future__ import annotations

import ssl
import time

from ..delivery.routes import ROUTES, path_for
from ..delivery.transport import Response, Transport, TransportError
from ..settings.config import Settings
from .common import EXIT_CREDENTIALS, EXIT_FAILED, EXIT_USAGE, CliError, Context

NO_CREDENTIALS = (
    "no BrowserStack credentials: set BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY "
    "(or userName/accessKey in browserstack.yml, or -D bstack.username=... "
    "-D bstack.access_key=...)"
)
CREDENTIALS_REFUSED = "refused the credentials"  # delivery's words (dispatch.py) for a 401/403 stop


def transport_options(settings: Settings) -> dict:
    """What uploader.make_transport() and deliver_journal() take."""
    return {
        "api_url": settings.api_url,
        "username": settings.username,
        "access_key": settings.access_key,
        "request_timeout": settings.request_timeout,
        "concurrency": settings.concurrency,
        "ca_bundle": settings.ca_bundle,
        "https_proxy": settings.https_proxy,
        "http_proxy": settings.http_proxy,
        "no_proxy": settings.no_proxy,
    }


def need_sending_settings(ctx: Context) -> None:
    """Commands that talk to TRA: a usable URL and both credentials, or exit 2."""
    settings = ctx.settings
    if not settings.api_url_ok:
        why = next((p for p in settings.problems if "api_url" in p or "API" in p), None)
        raise CliError(
            why or f"the API URL {settings.api_url!r} is not allowed (see the problems above)",
            EXIT_USAGE,
        )
    if not settings.has_credentials:
        raise CliError(NO_CREDENTIALS, EXIT_USAGE)


def make_client(settings: Settings) -> Transport:
    from ..delivery.uploader import make_transport

    try:
        return make_transport(transport_options(settings))
    except (ValueError, OSError, ssl.SSLError) as exc:
        raise CliError(f"cannot set up the connection: {exc}", EXIT_USAGE) from None


def send(client: Transport, op: str, body: dict, build: str | None = None, target=None) -> dict:
    """One API call outside a journal (build start/finish, doctor --live).  The body is a
    draft like a journal's, so it goes through finalize() exactly like delivered ones."""
    from ..delivery.finalize import finalize

    try:
        response = client.request(ROUTES[op][0], path_for(op, build, target), finalize(op, body))
    except TransportError as exc:
        raise CliError(f"{op}: {exc}", EXIT_FAILED) from None
    return check_response(op, response)


def check_response(op: str, response: Response) -> dict:
    if response.status in (401, 403):
        raise CliError(
            f"BrowserStack {CREDENTIALS_REFUSED} ({response.status} {response.message()}); "
            "check BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY",
            EXIT_CREDENTIALS,
        )
    if not 200 <= response.status < 300:
        raise CliError(f"{op}: HTTP {response.status}: {response.message()}", EXIT_FAILED)
    data = response.json() or {}
    id_field = ROUTES[op][2]
    if id_field and not isinstance(data.get(id_field), str):
        raise CliError(f"{op}: the answer has no {id_field}", EXIT_FAILED)
    return data


def now_ms() -> int:
    return time.time_ns() // 1_000_000
