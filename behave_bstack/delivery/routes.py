"""Which HTTP call each journal operation is, what a start call's answer is called, and
where a build can be looked at."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from ..base.loopback import is_loopback

# op -> (method, path template, name of the id field in a start's answer)
ROUTES: dict[str, tuple[str, str, str | None]] = {
    "build_start": ("POST", "/ext/v1/builds/start", "build_hashed_id"),
    "build_finish": ("PUT", "/ext/v1/builds/{build}/finish", None),
    "test_start": ("POST", "/ext/v1/builds/{build}/tests/start", "uuid"),
    "test_finish": ("PUT", "/ext/v1/builds/{build}/tests/{target}/finish", None),
    "hook_start": ("POST", "/ext/v1/builds/{build}/hooks/start", "uuid"),
    "hook_finish": ("PUT", "/ext/v1/builds/{build}/hooks/{target}/finish", None),
    "logs": ("POST", "/ext/v1/builds/{build}/logs", None),
}

SENDABLE = frozenset(ROUTES)
STARTS = frozenset(op for op, (_, _, id_field) in ROUTES.items() if id_field)
BUILD_URL = "https://automation.browserstack.com/builds/{build}"


def build_url(build_id: str, api_url: str | None = None) -> str:
    """The page of a build: BrowserStack's, or, when the API URL is a loopback address
    (the local server, `behave-bstack serve`), that server's own page of the build."""
    if api_url:
        try:
            parts = urlsplit(api_url)
            local = parts.scheme in ("http", "https") and is_loopback(parts.hostname)
        except ValueError:  # a malformed port, say: not the local server's address
            local = False
        if local:  # scheme://host:port/prefix, never a user:key@ written into the URL
            origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
            return f"{origin.rstrip('/')}/builds/{quote(build_id, safe='')}"
    return BUILD_URL.format(build=build_id)


def path_for(op: str, build_id: str | None, target_id: str | None) -> str:
    return ROUTES[op][1].format(build=build_id, target=target_id)
