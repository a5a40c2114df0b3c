"""Peak memory of a process and of its children, read from /proc (Linux) while they run.

Not wait4()'s ru_maxrss: Python starts a child with vfork(), and Linux then counts the
parent's resident memory (the benchmark's own, measured at 120 MiB after reading the local
server's state) into the child's peak.  VmHWM is the peak of the process's own memory
since its exec.
"""

from __future__ import annotations

import os
import threading
import time


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class HwmPoller:
    """Polls the VmHWM of a process and of its children (the uploader behave starts) every
    20 ms until stopped; the last value read of each is its peak (VmHWM only grows)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.own = 0
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        scan_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= scan_at:
                for child in children_of(self.pid):
                    self.peaks.setdefault(child, 0)
                scan_at = now + 0.5
            value = vm_hwm_kib(self.pid)
            if value is not None:
                self.own = max(self.own, value)
            for child in list(self.peaks):
                value = vm_hwm_kib(child)
                if value is not None:
                    self.peaks[child] = max(self.peaks[child], value)
            self._stop.wait(0.02)

    def stop(self) -> tuple[float, float | None]:
        self._stop.set()
        self._thread.join()
        children = max(self.peaks.values()) / 1024 if self.peaks else None
        return self.own / 1024, children
