"""The rejects file of ``--skip-invalid``: one JSON line per refused record, with where and why."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from dmitems.errors import Interrupted


class RejectsFile:
    """Written beside its target as a hidden temporary file, put in place when the import ends.

    :meth:`flush` runs at each commit, so after a crash the temporary file
    (``.NAME.PID.tmp``) holds at least the refused records of the committed part.
    """

    def __init__(self, path: Path, where: str) -> None:
        import orjson

        from dmitems.formats import atomic_output

        self._where = where
        self._context = atomic_output(path)
        self._stream = self._context.__enter__()
        self._dumps = orjson.dumps

    def write(self, position: int, record: Any, problems: list[tuple[str, str]]) -> None:
        reason = "; ".join(f"{path}: {why}" for path, why in problems)
        entry = {self._where: position, "reason": reason, "record": record}
        self._stream.write(self._dumps(entry, default=str).decode() + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def finish(self, keep: bool) -> None:
        """Put the file in place, or (nothing was written) discard it like a failed output."""
        if keep:
            self._context.__exit__(None, None, None)
        else:
            discarded = Interrupted("import rolled back")
            with contextlib.suppress(Interrupted):
                self._context.__exit__(Interrupted, discarded, None)
