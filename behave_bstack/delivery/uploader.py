"""The uploader process: follows a run's journal while behave writes it, and delivers.

behave starts it with `python -m behave_bstack.delivery.uploader RUN_DIR` and writes its settings,
credentials included, as one JSON line on its stdin (never on the command line or in the
environment, where other processes could read them).  behave keeps that pipe open: a line
"stop" asks the uploader to stop (the flush deadline passed), and the pipe's end tells that
behave is gone, however it ended -- the same on Linux, macOS and Windows, where there is no
SIGTERM to catch (Popen.terminate() kills at once) and os.getppid() does not change when
the parent dies.  It runs in its own session (Unix) or process group (Windows), so a Ctrl-C
in the terminal reaches behave, which then stops it in an orderly way.

It ends when the journal says the run ended and everything is settled, when behave asks it
to stop (or sends SIGTERM), or, if behave died without ending the run, after it closed the
runs left open as interrupted and delivered what it could within the orphan time limit.
Either way it writes report.json for behave's summary.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from ..base import portable
from ..base.defaults import DEFAULT_CONCURRENCY
from ..journal import store as journal
from .dispatch import Delivery
from .transport import Transport

KEEPER_LIMIT = 6 * 3600  # seconds a keeper waits for the other processes of its build run
INTERRUPTED = (
    "Interrupted: the behave process ended before this finished (killed or crashed); "
    "closed by behave-bstack"
)


def make_transport(options: dict) -> Transport:
    return Transport(
        options["api_url"],
        options["username"],
        options["access_key"],
        timeout=float(options.get("request_timeout", 15)),
        ca_bundle=options.get("ca_bundle"),
        https_proxy=options.get("https_proxy"),
        http_proxy=options.get("http_proxy"),
        no_proxy=options.get("no_proxy"),
    )


def watch_control(control, stopping: threading.Event, gone: threading.Event) -> None:
    """Read behave's pipe on a thread: "stop" sets `stopping`; its end sets `gone`."""

    def watch() -> None:
        try:
            for line in control:
                if line.strip() == "stop":
                    stopping.set()
        except (OSError, ValueError):
            pass
        gone.set()

    threading.Thread(target=watch, name="bstack-control", daemon=True).start()


def follow(run_dir: Path, options: dict, control=None) -> dict:
    """Deliver a journal that behave is still writing; returns the report.  `control`:
    behave's pipe (see the module's docstring); None: behave's liveness by its pid."""
    delivery = Delivery(
        run_dir,
        make_transport(options),
        concurrency=int(options.get("concurrency", DEFAULT_CONCURRENCY)),
    )
    parent = int(options.get("parent_pid") or os.getppid())
    try:
        signal.signal(signal.SIGTERM, lambda *_: delivery.stopping.set())
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError, AttributeError):
        pass  # not the main thread, or a platform without these signals
    gone = threading.Event()
    if control is not None:
        watch_control(control, delivery.stopping, gone)

    def parent_alive() -> bool:
        if gone.is_set():
            return False
        if os.name == "posix":
            return os.getppid() == parent  # re-parented: behave died
        return control is not None or portable.pid_alive(parent)

    try:
        delivery.run_until(float("inf"), follow=True, alive=parent_alive)
        if not delivery.stopping.is_set() and not delivery.ended and not parent_alive():
            delivery.load_new()
            if not delivery.journal_ended():
                delivery.close_interrupted(INTERRUPTED)
            orphan_time = float(options.get("orphan_timeout", 60))
            delivery.run_until(time.monotonic() + orphan_time)
        if not delivery.stopping.is_set() and delivery.only_waiting():
            # The keeper of a shared build: finish it once every process of the run is gone.
            delivery.run_until(time.monotonic() + KEEPER_LIMIT)
    finally:
        delivery.shutdown(drain=4.0)  # behave waits 5 s after asking us to stop
    report = delivery.report()
    report["cpu_seconds"] = round(time.process_time(), 3)  # user + system, every platform
    journal.write_report(run_dir, report)
    if os.environ.get("BSTACK_UPLOADER_RUSAGE"):  # benchmarks read the peak memory here
        with open(os.environ["BSTACK_UPLOADER_RUSAGE"], "w") as handle:
            json.dump({"maxrss_kib": peak_rss_kib()}, handle)
    return report


def peak_rss_kib() -> int | None:
    """Peak resident memory (Linux: KiB; macOS reports bytes); None where `resource` is
    missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def writer_alive(meta: dict) -> bool:
    """Is the behave process that wrote this journal still running (on this machine)?"""
    if meta.get("hostname") != socket.gethostname():
        return False
    return portable.pid_alive(meta.get("pid"))


def deliver_journal(run_dir: Path, options: dict, timeout: float, max_attempts: int = 5) -> dict:
    """Send what a journal still holds (`behave-bstack upload`).  Runs left open by a
    behave that died are closed as interrupted, and the build is finished.  The caller
    holds the journal's lock."""
    delivery = Delivery(
        run_dir,
        make_transport(options),
        concurrency=int(options.get("concurrency", DEFAULT_CONCURRENCY)),
        max_attempts=max_attempts,
    )
    try:
        delivery.load_new()  # the first WINDOW events; the rest as they are sent
        if not delivery.journal_ended():
            if writer_alive(delivery.meta):
                report = delivery.report()
                report["stopped"] = "the behave run that writes this journal is still going"
                return report
            delivery.close_interrupted(INTERRUPTED)
        delivery.run_until(time.monotonic() + timeout)
    finally:
        delivery.shutdown(drain=float(options.get("request_timeout", 15)))
    report = delivery.report()
    journal.write_report(run_dir, report)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    run_dir = Path(argv[0])
    options = json.loads(sys.stdin.readline() or "{}")  # then the pipe stays open
    lock = journal.try_lock(run_dir)
    if lock is None:
        return 0  # someone else is delivering this journal

    level = logging.DEBUG if options.get("debug") else logging.WARNING
    handler = logging.FileHandler(journal.private_file(run_dir / "upload.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("behave_bstack")
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        follow(run_dir, options, control=sys.stdin)
    finally:
        lock.close()  # before os._exit(): a lock file (PidLock) would outlive us
    return 0


if __name__ == "__main__":
    exit_code = main()
    # behave waits for this process to end: skip the interpreter's teardown (tens of ms
    # freeing the parsed features), everything it needs is written and closed by now.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(exit_code)
