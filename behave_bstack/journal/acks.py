"""What a journal's acks.jsonl says, held compactly (the uploader, and `behave-bstack`).

A run of 100,000 scenarios has some 300,000 acks; as dicts they took ~100 MB.  Here each
sequence number costs one byte (unknown, acknowledged, refused); the only strings kept are
the server ids of acknowledged starts, until delivery takes them (AckIndex.take_id), and
the reasons of refusals.  The last record of a sequence number wins, as in load_acks().
"""

from __future__ import annotations

from pathlib import Path

from . import store

UNKNOWN, OK, REFUSED = 0, 1, 2
_DENSE_LIMIT = 1 << 26  # sequence numbers beyond this (never seen in practice) go in a dict


class AckIndex:
    def __init__(self, directory: Path, keep_ids: bool = True) -> None:
        """keep_ids=False: only the id of the lowest acknowledged sequence number is kept
        (`first_id`: the build's, when the journal starts it)."""
        self._state = bytearray()
        self._sparse: dict[int, int] = {}
        self.ids: dict[int, str] = {}  # seq -> the server id an acknowledged start got
        self.refusals: dict[int, tuple[int | None, str | None]] = {}  # seq -> status, error
        self.first: tuple[int, str] | None = None  # (seq, id) of the lowest acked with an id
        self.count = 0  # sequence numbers with an ack
        for ack in store.iter_records(Path(directory) / store.ACKS):
            seq = ack.get("seq") if isinstance(ack, dict) else None
            if isinstance(seq, int) and seq >= 0:
                self._add(seq, ack, keep_ids)

    def _add(self, seq: int, ack: dict, keep_ids: bool) -> None:
        ok = bool(ack.get("ok"))
        if self.status(seq) == UNKNOWN:
            self.count += 1
        self._set(seq, OK if ok else REFUSED)
        server_id = ack.get("id") if ok else None
        if ok:
            self.refusals.pop(seq, None)
        else:
            self.refusals[seq] = (ack.get("status"), ack.get("error"))
        if isinstance(server_id, str) and server_id:
            if keep_ids:
                self.ids[seq] = server_id
            if self.first is None or seq <= self.first[0]:
                self.first = (seq, server_id)
        else:
            self.ids.pop(seq, None)
            if self.first is not None and self.first[0] == seq:
                self.first = None

    def _set(self, seq: int, value: int) -> None:
        if seq >= _DENSE_LIMIT:
            self._sparse[seq] = value
            return
        if seq >= len(self._state):
            self._state.extend(bytes(max(seq + 1 - len(self._state), len(self._state) // 2)))
        self._state[seq] = value

    def status(self, seq: int) -> int:
        if seq < len(self._state):
            return self._state[seq]
        return self._sparse.get(seq, UNKNOWN)

    def take_id(self, seq: int) -> str | None:
        """The id an acknowledged start got, forgotten here (delivery keeps it: ServerIds)."""
        return self.ids.pop(seq, None)

    def refusal(self, seq: int) -> str:
        return str(self.refusals.get(seq, (None, None))[1] or "?")

    def __len__(self) -> int:
        return self.count
