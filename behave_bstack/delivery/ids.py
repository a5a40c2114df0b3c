"""The server ids delivery learnt, held compactly (the uploader process).

Every later call of a run names the test and hook runs it belongs to by their server ids,
and a log entry or a feature hook's output may come long after its run started, so every
id is kept for the whole delivery.  Refs are our own: a letter and a number ("t12", "h3");
TRA's run ids are UUIDs.  Such an id is kept as 16 bytes at the ref's number in one
bytearray per letter (17 bytes a run, instead of ~180 as two strings in a dict); any other
ref or id ("build", a test's odd id, FAILED) goes in a dict.
"""

from __future__ import annotations

import re

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REF = re.compile(r"([a-z])(0|[1-9][0-9]{0,6})")  # "t012" is not "t12"
_PACKED = 1


class _Slots:
    """16 bytes per number, and a byte saying whether the number has an id there."""

    def __init__(self) -> None:
        self.flags = bytearray()
        self.data = bytearray()

    def grow(self, number: int) -> None:
        size = max(number + 1, len(self.flags) * 3 // 2, 64)
        self.flags.extend(bytes(size - len(self.flags)))
        self.data.extend(bytes(16 * size - len(self.data)))


class ServerIds:
    def __init__(self) -> None:
        self._slots: dict[str, _Slots] = {}
        self._other: dict[str, object] = {}

    def get(self, ref, default=None):
        place = self._place(ref)
        if place is not None:
            slots, number = place
            if number < len(slots.flags) and slots.flags[number] == _PACKED:
                raw = slots.data[16 * number : 16 * number + 16].hex()
                return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        return self._other.get(ref, default)

    def __setitem__(self, ref, server_id) -> None:
        """server_id: the id, FAILED (any object), or None: unknown again."""
        place = self._place(ref)
        if place is not None:
            slots, number = place
            if number < len(slots.flags):
                slots.flags[number] = 0
            if isinstance(server_id, str) and _UUID.fullmatch(server_id):
                if number >= len(slots.flags):
                    slots.grow(number)
                slots.flags[number] = _PACKED
                slots.data[16 * number : 16 * number + 16] = bytes.fromhex(
                    server_id.replace("-", "")
                )
                self._other.pop(ref, None)
                return
        if server_id is None:
            self._other.pop(ref, None)
        else:
            self._other[ref] = server_id

    def __getitem__(self, ref):
        value = self.get(ref)
        if value is None:
            raise KeyError(ref)
        return value

    def __contains__(self, ref) -> bool:
        return self.get(ref) is not None

    def _place(self, ref) -> tuple[_Slots, int] | None:
        match = _REF.fullmatch(ref) if isinstance(ref, str) else None
        if match is None:
            return None
        slots = self._slots.get(match[1])
        if slots is None:
            slots = self._slots[match[1]] = _Slots()
        return slots, int(match[2])
