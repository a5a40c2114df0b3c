"""The compact form of test drafts in the journal, and its expansion when read.

behave's thread pays for every byte it builds and encodes, so a test's drafts leave out
what can be rebuilt from earlier journal lines, and every reader of the journal
(EventReader) puts it back before anything else sees the event:

    {"op": "source", "ref": "s1", "body": {"file": ..., "lines": [...]}}
        a feature file's lines, journaled once, when its first scenario is reported
    test_start  + "scenario": [source ref, place in the feature's walk, line]
        -> name, file_name, location, scopes, tags, vc_filepath, code and steps, rebuilt
           from the source's lines by behave's parser (catalog.py); the usual form
    test_start  + "code":  [text | [source ref, first line, end line], ...]
                + "steps": [[keyword, text], ...]
        -> body.body = {"lang": "gherkin", "code": the pieces joined by newlines}
           (a scenario whose file could not be read, or one rebuilt by a hook)
    test_finish + "steps": [[result, started_at, finished_at(, failure)], ...]
        -> body.meta.steps (id, keyword and text from the start), file_name and scopes
    test_finish + "steps": "journaled"
        -> the same, with the results of the test's step records (below): a test whose
           every step passed says no more about them (passed_finish_line)
                + "templates": [[keyword, text], ...]
        -> the keyword and text of the steps behave really ran, when they differ from
           what the start gave (a hook changed the model at run time)
    {"op": "step", "ref": test ref, "step": [index, result, started_at, finished_at(,
     failure)]}
        a step of a running test that finished, journaled as it happens, so that a test
        whose process died is closed with the steps it had run (Expander.interrupted)

Events in the full form pass through unchanged.
"""

from __future__ import annotations

from ..description.mapping import render_code

SOURCE = "source"

# The two drafts behave's thread writes for almost every scenario, formatted directly
# instead of built as dicts and JSON-encoded (measured in a tight loop: 29 -> 23 us per
# scenario of the whole tracker path).  Every value is an int or one of our own ids ("t12",
# "s3"), which JSON needs no escaping for; the tracker uses the general form whenever
# anything else is involved.
_START = (
    '{"seq":%d,"op":"test_start","scenario":["%s",%d,%d],"ref":"%s","body":{"started_at":%d}}\n'
)
# A passed step of a running test: (seq, test ref, index, started_at, finished_at).
STEP_TEMPLATE = '{"seq":%d,"op":"step","ref":"%s","step":[%d,"passed",%d,%d]}\n'
_PASSED_FINISH = (
    '{"seq":%d,"op":"test_finish","steps":"journaled","ref":"%s",'
    '"body":{"result":"passed","finished_at":%d,"duration_in_ms":%d%s}}\n'
)
JOURNALED = "journaled"


def start_line(seq: int, ref: str, reference: list, started_at: int) -> bytes:
    """A test_start that names its scenario: [source ref, place in the walk, line]."""
    source_ref, position, line = reference
    return (_START % (seq, source_ref, position, line, ref, started_at)).encode("ascii")


def passed_finish_line(
    seq: int, ref: str, finished_at: int, duration: int, hooks: list[str]
) -> bytes:
    """The finish of a test whose steps all passed, each journaled by a step record
    (STEP_TEMPLATE); `hooks`: the refs of its hook runs."""
    links = ""
    if hooks:
        links = ',"hooks":[' + ",".join([f'{{"$ref":"{hook}"}}' for hook in hooks]) + "]"
    return (_PASSED_FINISH % (seq, ref, finished_at, duration, links)).encode("ascii")


def expand_steps(results: list, templates: list) -> list[dict]:
    steps = []
    for index, result in enumerate(results):
        keyword, text = templates[index] if index < len(templates) else ("", "")
        item = {"id": str(index + 1), "keyword": keyword, "text": text, "result": result[0]}
        if result[1] is not None and result[2] is not None:
            item["started_at"] = result[1]
            item["finished_at"] = result[2]
            item["duration"] = max(0, result[2] - result[1])
        if len(result) > 3:
            item["failure"] = result[3]
        steps.append(item)
    return steps


class Expander:
    """Turns the journal's events back into full drafts, in journal order.  Keeps the
    latest source's lines and, per test not yet finished, what its finish needs."""

    def __init__(self) -> None:
        self.sources: dict[str, list[str]] = {}
        self.catalogs: dict = {}  # source ref -> catalog.FeatureCatalog
        self.open_tests: dict[str, tuple] = {}
        self.progress: dict[str, dict[int, list]] = {}  # ref -> its steps finished so far

    def copy(self) -> Expander:
        """An expander that goes on from this one's state without changing it (sources and
        catalogs are only replaced, never changed: they are shared)."""
        other = Expander()
        other.sources, other.catalogs = self.sources, self.catalogs
        other.open_tests = dict(self.open_tests)
        other.progress = {ref: dict(done) for ref, done in self.progress.items()}
        return other

    def expand(self, record: dict) -> dict | None:
        """The full event, or None for a record only readers need (a source)."""
        op = record.get("op")
        if op == "end":
            # Nothing more refers to a source: its lines and parsed feature can go.
            self._release()
            self.sources = {}
            return record
        if op == SOURCE:
            body = record.get("body") or {}
            # The writer refers to the latest source only (GherkinSource keeps one file).
            # (imported here: catalog.py imports mapping, which imports this module)
            from .catalog import FeatureCatalog

            self.sources = {str(record.get("ref")): list(body.get("lines") or [])}
            self._release()
            self.catalogs = {str(record.get("ref")): FeatureCatalog(body)}  # parses when asked
            return None
        if op == "step":
            item = record.get("step")
            if isinstance(item, list) and len(item) >= 4 and isinstance(item[0], int):
                self.progress.setdefault(str(record.get("ref")), {})[item[0]] = item[1:]
            return None
        if op == "test_start" and "scenario" in record:
            body = self._described(record.pop("scenario"))
            body.update(record.get("body") or {})
            self._start(record, body, body.pop("steps", []))
        elif op == "test_start" and ("code" in record or "steps" in record):
            body = dict(record.get("body") or {})
            body["body"] = {
                "lang": "gherkin",
                "code": render_code(record.pop("code", []), self.sources),
            }
            self._start(record, body, record.pop("steps", []))
        elif op == "test_finish" and "steps" in record:
            file_name, scopes, templates = self.open_tests.pop(record.get("ref"), (None, None, []))
            done = self.progress.pop(record.get("ref"), None) or {}
            templates = record.pop("templates", None) or templates
            results = record.pop("steps")
            if results == JOURNALED:
                results = [done[index] for index in sorted(done)]
            body = dict(record.get("body") or {})
            if file_name is not None:
                body.setdefault("file_name", file_name)
                body.setdefault("scopes", scopes)
            body["meta"] = {"steps": expand_steps(results, templates)}
            record["body"] = body
        elif op == "test_finish":
            self.open_tests.pop(record.get("ref"), None)
            self.progress.pop(record.get("ref"), None)
        return record

    def _release(self) -> None:
        for catalog in self.catalogs.values():
            catalog.release()
        self.catalogs = {}

    def interrupted(self, ref: str) -> tuple[list[dict], int | None]:
        """For a test that was never finished: meta.steps with every step it journaled
        as finished and the rest skipped, and when its last step ended (or None)."""
        done = self.progress.get(ref) or {}
        templates = (self.open_tests.get(ref) or (None, None, []))[2]
        count = max(len(templates), max(done, default=-1) + 1)
        results = [done.get(index, ["skipped", None, None]) for index in range(count)]
        ends = [item[2] for item in done.values() if isinstance(item[2], int)]
        return expand_steps(results, templates), max(ends, default=None)

    def _start(self, record: dict, body: dict, templates: list) -> None:
        """Put a start's full body in place and keep what its finish will need."""
        self.open_tests[record.get("ref")] = (body.get("file_name"), body.get("scopes"), templates)
        record["body"] = body

    def _described(self, reference) -> dict:
        """The start fields of a scenario named by reference, with its step templates
        under "steps"; a scenario that cannot be found gets a name that says so."""
        source_ref, position, line = (list(reference) + [None, None, None])[:3]
        catalog = self.catalogs.get(str(source_ref))
        found = catalog.describe(position, line) if catalog is not None else None
        if found is None:
            file_name = catalog.source.get("file") if catalog is not None else None
            why = catalog.error if catalog is not None and catalog.error else "not found"
            file_name = file_name or "unknown.feature"
            return {
                "name": f"Scenario at {file_name}:{line} ({why} in the journal)",
                "file_name": file_name,
                "location": f"{file_name}:{line}",
                "scopes": [file_name],
                "tags": [],
                "body": {"lang": "gherkin", "code": ""},
                "steps": [],
            }
        common, code, templates = found
        return {**common, "body": {"lang": "gherkin", "code": code}, "steps": templates}
