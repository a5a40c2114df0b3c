"""``python -m behave_bstack.emulator``: run the TRA emulator in the foreground.

Prints ``TRA emulator listening on http://HOST:PORT (user=U)`` once (flushed), writes the
port to ``--port-file`` if given (atomically, so a poller never reads half a number), and
exits 0 on SIGTERM or SIGINT. Faults can be driven over HTTP at ``/_emulator/faults``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .server import TraServer, is_loopback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m behave_bstack.emulator", description="Local TRA API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0: pick a free one)")
    parser.add_argument("--user", default="bs_user", help="Basic auth username")
    parser.add_argument("--key", default="bs_key", help="Basic auth access key")
    parser.add_argument("--port-file", help="write the bound port to this file")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every API answer")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error(f"refusing to bind {args.host!r}: loopback hosts only")

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())

    srv = TraServer(username=args.user, access_key=args.key, host=args.host, port=args.port)
    srv.start()
    try:
        if args.latency_ms:
            srv.faults.latency(args.latency_ms)
        if args.port_file:
            # A fresh name (mkstemp: O_EXCL, owner-only) beside it, not a predictable one
            # that another account could have put a symbolic link at.
            import tempfile

            folder, name = os.path.split(os.path.abspath(args.port_file))
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{srv.port}\n")
            os.replace(tmp, args.port_file)
        print(f"TRA emulator listening on {srv.url} (user={args.user})", flush=True)
        while not done.wait(3600):
            pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
