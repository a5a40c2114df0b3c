"""`behave-bstack import` at scale: time and peak memory of importing big reports.

    python benchmarks/bench_import.py                    # 100,000 test cases, journal only
    python benchmarks/bench_import.py --tests 20000 --live   # and delivered to a local server

Writes a Cucumber Messages report (the cucumber-js order: every pickle and test case first,
then the runs, so the importer must look them up later) and a behave `-f json` report of
the same tests (features of 100 scenarios, 3 steps each), imports each in a child process
and prints its wall time and peak resident memory (the child's ru_maxrss).  With --live
the import also delivers everything to the local TRA emulator running in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_FEATURE = 100
STEPS = ("Given a cart", "When I add {n} apples", "Then the cart holds {n} apples")


def write_messages(path: Path, tests: int) -> None:
    ids = iter(range(1, 10**9))
    nid = lambda: str(next(ids))  # noqa: E731
    stamp = [0]

    def ts():
        stamp[0] += 1
        return {"seconds": 1_700_000_000 + stamp[0] // 1000, "nanos": (stamp[0] % 1000) * 10**6}

    cases = []
    with open(path, "w", encoding="utf-8") as out:
        w = lambda key, value: out.write(json.dumps({key: value}) + "\n")  # noqa: E731
        product = {"name": "bench", "version": "1"}
        w("meta", {"protocolVersion": "27", "implementation": product, "cpu": product,
                   "os": product, "runtime": product})  # fmt: skip
        for f in range(0, tests, PER_FEATURE):
            uri = f"features/f{f // PER_FEATURE}.feature"
            lines = [f"Feature: Feature {f // PER_FEATURE}", ""]
            children = []
            count = min(PER_FEATURE, tests - f)
            pickles = []
            for s in range(count):
                line = len(lines) + 1
                lines.append(f"  Scenario: Scenario {s}")
                sid, steps, psteps = nid(), [], []
                for k, text in enumerate(STEPS):
                    step_id = nid()
                    keyword = text.split()[0]
                    body = text.split(" ", 1)[1].format(n=s)
                    lines.append(f"    {keyword} {body}")
                    steps.append(
                        {"id": step_id, "keyword": keyword + " ", "text": body,
                         "location": {"line": line + k + 1, "column": 5}}
                    )  # fmt: skip
                    psteps.append({"id": nid(), "text": body, "astNodeIds": [step_id]})
                lines.append("")
                children.append(
                    {"scenario": {"id": sid, "keyword": "Scenario", "name": f"Scenario {s}",
                                  "description": "", "tags": [], "examples": [], "steps": steps,
                                  "location": {"line": line, "column": 3}}}
                )  # fmt: skip
                pickles.append(
                    {"id": nid(), "uri": uri, "name": f"Scenario {s}", "language": "en",
                     "astNodeIds": [sid], "tags": [], "steps": psteps,
                     "location": {"line": line, "column": 3}}
                )  # fmt: skip
            w(
                "source",
                {
                    "uri": uri,
                    "data": "\n".join(lines),
                    "mediaType": "text/x.cucumber.gherkin+plain",
                },
            )
            w("gherkinDocument", {"uri": uri, "comments": [], "feature": {
                "tags": [], "language": "en", "keyword": "Feature", "description": "",
                "name": lines[0][9:], "children": children, "location": {"line": 1, "column": 1}}})  # fmt: skip
            for pickle in pickles:
                w("pickle", pickle)
                case = {"id": nid(), "pickleId": pickle["id"],
                        "testSteps": [{"id": nid(), "pickleStepId": p["id"]} for p in pickle["steps"]]}  # fmt: skip
                cases.append(case)
        run = nid()
        w("testRunStarted", {"id": run, "timestamp": ts()})
        for case in cases:
            w("testCase", case)
        for case in cases:
            started = nid()
            w(
                "testCaseStarted",
                {"id": started, "testCaseId": case["id"], "attempt": 0, "timestamp": ts()},
            )
            for step in case["testSteps"]:
                w(
                    "testStepStarted",
                    {"testCaseStartedId": started, "testStepId": step["id"], "timestamp": ts()},
                )
                result = {"status": "PASSED", "duration": {"seconds": 0, "nanos": 10**6}}
                w("testStepFinished", {"testCaseStartedId": started, "testStepId": step["id"],
                                       "testStepResult": result, "timestamp": ts()})  # fmt: skip
            w(
                "testCaseFinished",
                {"testCaseStartedId": started, "willBeRetried": False, "timestamp": ts()},
            )
        w("testRunFinished", {"testRunStartedId": run, "success": True, "timestamp": ts()})


def write_behave_json(path: Path, tests: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("[\n")
        for f in range(0, tests, PER_FEATURE):
            uri = f"features/f{f // PER_FEATURE}.feature"
            elements = []
            for s in range(min(PER_FEATURE, tests - f)):
                steps = []
                for k, text in enumerate(STEPS):
                    keyword, body = text.split(" ", 1)
                    steps.append({"keyword": keyword, "step_type": keyword.lower(),
                                  "name": body.format(n=s), "location": f"{uri}:{4 * s + k + 4}",
                                  "result": {"status": "passed", "duration": 0.001}})  # fmt: skip
                elements.append({"type": "scenario", "keyword": "Scenario", "name": f"Scenario {s}",
                                 "tags": [], "location": f"{uri}:{4 * s + 3}", "steps": steps,
                                 "status": "passed"})  # fmt: skip
            feature = {"keyword": "Feature", "name": f"Feature {f // PER_FEATURE}", "tags": [],
                       "location": f"{uri}:1", "status": "passed", "elements": elements}  # fmt: skip
            out.write(("" if f == 0 else ",\n") + json.dumps(feature))
        out.write("\n]\n")


# The child reports its own peak (VmHWM: the high-water mark of its memory after exec; the
# ru_maxrss a parent gets would include this benchmark's own memory, which a forked child
# carried before exec).
CHILD = """
import sys
from behave_bstack.command.main import main
code = main(sys.argv[1:])
peak = None
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) // 1024
except OSError:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
sys.stderr.write(f"PEAK {peak}\\n")
sys.exit(code)
"""


def run_import(report: Path, workdir: Path, env: dict) -> tuple[float, int, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, "import", str(report)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    lines = proc.stderr.strip().splitlines()
    peak = int(lines[-1].split()[1]) if lines and lines[-1].startswith("PEAK") else -1
    return seconds, peak, "\n  ".join(line for line in lines if not line.startswith("PEAK"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=100_000)
    parser.add_argument("--live", action="store_true", help="deliver to a local emulator too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "browserstack.yml").write_text("projectName: bench\n")
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BROWSERSTACK_", "BSTACK_"))
        }
        env["BSTACK_JOURNAL_DIR"] = str(work / "journal")
        server = None
        if args.live:
            from behave_bstack.emulator import TraServer

            server = TraServer(username="u", access_key="k")
            server.start()
            env.update(BROWSERSTACK_USERNAME="u", BROWSERSTACK_ACCESS_KEY="k",
                       BROWSERSTACK_API_URL=server.url)  # fmt: skip
        try:
            for name, writer in (("messages", write_messages), ("behave-json", write_behave_json)):
                report = work / f"report.{name}"
                writer(report, args.tests)
                size = report.stat().st_size / 2**20
                seconds, peak, last = run_import(report, work, env)
                print(
                    f"{name}: {args.tests:,} test cases ({size:.0f} MiB): {seconds:.1f} s, "
                    f"peak memory {peak} MiB{' (delivered)' if args.live else ' (journal only)'}"
                )
                print(f"  {last}")
                report.unlink()
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
