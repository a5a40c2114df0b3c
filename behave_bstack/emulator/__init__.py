"""A local TRA API emulator for tests and benchmarks (standard library only).

``TraServer`` serves the seven endpoints of tra-api.md on loopback, validates every body
with ``validate`` (an implementation independent of the client's payload builders),
records what it accepted, and can misbehave on demand (``srv.faults``). Run it as a
process with ``python -m behave_bstack.emulator``.
"""

from .faults import Faults
from .server import TraServer
from .state import (
    BuildRecord,
    CallRecord,
    EmulatorState,
    HookRunRecord,
    LogRecord,
    TestRunRecord,
)
from .validation import OPS, validate

__all__ = [
    "OPS",
    "BuildRecord",
    "CallRecord",
    "EmulatorState",
    "Faults",
    "HookRunRecord",
    "LogRecord",
    "TestRunRecord",
    "TraServer",
    "validate",
]
