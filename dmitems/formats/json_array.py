"""The JSON array reader: a top-level array's elements, one at a time, from a text stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

from dmitems.errors import InvalidInput

READ_SIZE = 1 << 20


class ArrayParser:
    """Yields the elements of a top-level JSON array, reading the text a piece at a time.

    Each element is decoded by the stdlib's C decoder (``raw_decode``) straight
    from a sliding buffer, so an element is never copied twice and the buffer
    stays about one read long (or one element, if an element is bigger).
    Errors name the line, column and character offset in the whole file.
    """

    def __init__(self, text: TextIO, label: str) -> None:
        self._text = text
        self._label = label
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._at = 0  # position in the buffer
        self._offset = 0  # characters dropped before the buffer
        self._lines = 0  # newlines dropped before the buffer
        self._line_start = 0  # offset of the start of the line the buffer begins in
        self._eof = False

    def _fill(self, at_least: int = READ_SIZE) -> bool:
        """Read more text; False at the end of the input."""
        if self._eof:
            return False
        dropped = self._buffer[: self._at]
        if "\n" in dropped:
            self._lines += dropped.count("\n")
            self._line_start = self._offset + dropped.rindex("\n") + 1
        self._offset += self._at
        more = self._text.read(max(at_least, READ_SIZE))
        self._buffer = self._buffer[self._at :] + more
        self._at = 0
        if not more:
            self._eof = True
        return bool(more)

    def _skip_space(self) -> str:
        """The next non-space character ('' at the end), without consuming it."""
        while True:
            buffer, at = self._buffer, self._at
            while at < len(buffer) and buffer[at] in " \t\r\n":
                at += 1
            self._at = at
            if at < len(buffer):
                return buffer[at]
            if not self._fill():
                return ""

    def _fail(self, reason: str, at: int | None = None) -> InvalidInput:
        at = self._at if at is None else at
        newline = self._buffer.rfind("\n", 0, at)
        line = self._lines + self._buffer.count("\n", 0, at) + 1
        start = self._offset + newline + 1 if newline >= 0 else self._line_start
        offset = self._offset + at
        return InvalidInput(
            f"{self._label}: malformed JSON at line {line}, column {offset - start + 1} "
            f"(character {offset}): {reason}"
        )

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._at)
            except json.JSONDecodeError as exc:
                # Cut off by the end of the buffer?  Then read on and try again.
                truncated = exc.pos >= len(self._buffer) - 8 or exc.msg.startswith(
                    "Unterminated string"
                )
                failed_at = self._offset + exc.pos  # _fill moves the buffer
                if truncated and self._fill(len(self._buffer)):
                    continue
                raise self._fail(exc.msg, failed_at - self._offset) from None
            if end >= len(self._buffer) and self._fill():
                continue  # a number or literal may go on in the next piece
            self._at = end
            return value

    def __iter__(self) -> Iterator[Any]:
        first = self._skip_space()
        if first == "":
            return  # an empty file holds no records
        if first != "[":
            raise self._fail("expected a JSON array of items ('[' ...)")
        self._at += 1
        if self._skip_space() == "]":
            self._at += 1
        else:
            while True:
                if self._skip_space() == "":
                    raise self._fail("unexpected end of input inside the array")
                yield self._value()
                following = self._skip_space()
                self._at += 1
                if following == "]":
                    break
                if following != ",":
                    self._at -= 1
                    raise self._fail(
                        "unexpected end of input inside the array"
                        if following == ""
                        else "expected ',' or ']' after an element"
                    )
        if self._skip_space() != "":
            raise self._fail("unexpected data after the array")
