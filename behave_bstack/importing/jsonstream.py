"""The elements of a top-level JSON array, one at a time, from a file of any size.

Runs in the `behave-bstack import` process.  Cucumber JSON and behave's `-f json` are one
array of features: reading it whole would hold the entire report (and its Python objects,
several times its size) in memory.  This decodes one feature at a time with the standard
library's decoder, keeping only the feature being read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

CHUNK = 1 << 16


class NotAnArray(ValueError):
    """The text is not a JSON array (or not JSON)."""


def array_items(handle, chunk: int = CHUNK) -> Iterator:
    """Each element of the JSON array `handle` (a text file) holds.  Raises NotAnArray
    where the text stops being a JSON array, naming the character offset."""
    decoder = json.JSONDecoder()
    buffer = ""
    offset = 0  # of buffer[0] in the file
    eof = False

    def more(at_least: int) -> bool:
        nonlocal buffer, eof
        if eof:
            return False
        piece = handle.read(max(chunk, at_least))
        if not piece:
            eof = True
            return False
        buffer += piece
        return True

    pos = 0

    def skip_space() -> bool:
        """Move pos past whitespace; False at the end of the text."""
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n\ufeff":
                pos += 1
            if pos < len(buffer):
                return True
            if not more(0):
                return False

    if not skip_space() or buffer[pos] != "[":
        raise NotAnArray("the text does not start with a JSON array ('[')")
    pos += 1
    first = True
    while True:
        if not skip_space():
            raise NotAnArray(f"the array is not closed (offset {offset + pos})")
        if buffer[pos] == "]":
            return
        if not first:
            if buffer[pos] != ",":
                raise NotAnArray(f"expected ',' or ']' at offset {offset + pos}")
            pos += 1
            if not skip_space():
                raise NotAnArray(f"the array is not closed (offset {offset + pos})")
        first = False
        while True:
            try:
                item, end = decoder.raw_decode(buffer, pos)
                break
            except json.JSONDecodeError as exc:
                # Incomplete, or invalid: more text tells which.  Read as much again as
                # is held, so that a large element costs a few decodes, not one per chunk.
                if not more(len(buffer)):
                    raise NotAnArray(
                        f"not valid JSON at offset {offset + exc.pos}: {exc.msg}"
                    ) from None
        yield item
        pos = end
        if pos > CHUNK:  # drop what was read
            buffer = buffer[pos:]
            offset += pos
            pos = 0
