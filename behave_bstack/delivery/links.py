"""Links between calls: {"$ref": "t12"} in a draft stands for the server id of t12's start
(journal/store.py).  Finding them, and putting the ids in their place before a call is
sent (the uploader process; `show` puts the local refs there instead)."""

from __future__ import annotations

FAILED = object()  # the id of a start that the server refused for good


def _is_ref(item) -> bool:
    return isinstance(item, dict) and len(item) == 1 and "$ref" in item


def refs_in(body) -> list[str]:
    """Every {"$ref": x} of a body.  The tracker puts links only in top-level fields
    (test_run_id, hooks) and in the top level of log entries, so only those are looked at:
    bodies are large (steps, tracebacks) and this runs for every call."""
    if not isinstance(body, dict):
        return []
    found = []
    for value in body.values():
        if isinstance(value, dict):
            if _is_ref(value):
                found.append(value["$ref"])
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    if _is_ref(item):
                        found.append(item["$ref"])
                    else:
                        found.extend(v["$ref"] for v in item.values() if _is_ref(v))
    return found


def resolve(body: dict, ids) -> dict:
    """A copy of the body with every link (see refs_in) replaced by the server id (`ids`:
    ref -> id, FAILED or None); links to runs the server refused are dropped (with their
    log entries)."""
    out = {}
    for key, value in body.items():
        if isinstance(value, dict) and _is_ref(value):
            target = ids.get(value["$ref"])
            if target is not FAILED and target is not None:
                out[key] = target
        elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
            out[key] = [r for r in (_resolve_item(i, ids) for i in value) if r is not None]
        else:
            out[key] = value
    return out


def _resolve_item(item, ids):
    if not isinstance(item, dict):
        return item
    if _is_ref(item):
        target = ids.get(item["$ref"])
        return None if target is FAILED else target
    if not any(_is_ref(v) for v in item.values()):
        return item
    resolved = {}
    for key, value in item.items():
        if _is_ref(value):
            target = ids.get(value["$ref"])
            if target is FAILED or target is None:
                return None  # a log entry of a run the server refused: nowhere to put it
            resolved[key] = target
        else:
            resolved[key] = value
    return resolved


def describe(event: dict) -> str:
    """An event in a message: its ref and name ("t12 'Checkout works'")."""
    body = event.get("body") or {}
    name = body.get("name") or body.get("hook_type") or ""
    ref = event.get("ref") or ""
    return f"{ref} {name!r}".strip() if name else ref or f"#{event.get('seq')}"
