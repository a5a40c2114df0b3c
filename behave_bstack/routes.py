"""Which HTTP call each journal operation is, and what a start call's answer is called."""

from __future__ import annotations

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


def path_for(op: str, build_id: str | None, target_id: str | None) -> str:
    return ROUTES[op][1].format(build=build_id, target=target_id)
