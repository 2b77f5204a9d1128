"""The meter's journal: an append-only file of accepted events, fsync'd before any answer.

One JSON object per line, one line per event, in the order the meter accepted them; that
order is the transparency log's leaf order, so the log is rebuilt from the journal on every
start and never needs a file of its own. A batch of events (every request that arrived while
the previous batch was being written) is written with one ``write`` and made durable with
one ``fsync`` (a group commit): nothing is acknowledged before that returns.

A ``kill -9`` or a power cut can leave the last line incomplete. That line was never
acknowledged, so :meth:`Journal.open` cuts the file back to the last complete line (a line is
complete when its newline is on disk) before anything reads it. Complete lines of a batch
that was cut short were not acknowledged either; keeping them is harmless, since a retry of
the same event id is answered as a duplicate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Final

from truecount.evidence.sign import fsync_folder

_TAIL_CHUNK: Final[int] = 1 << 16


class Journal:
    """An open journal file, appended to by one writer."""

    def __init__(self, path: Path, handle: BinaryIO, cut: int) -> None:
        self.path = path
        self._fh = handle
        #: Bytes removed from the end on open (an incomplete last line).
        self.cut = cut

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (or create) the journal, first cutting an incomplete last line away."""
        path.parent.mkdir(parents=True, exist_ok=True)
        cut = _cut_torn_tail(path)
        fh = path.open("ab")
        fsync_folder(path.parent)  # the new journal's name is durable too
        return cls(path, fh, cut)

    def append(self, data: bytes) -> None:
        """Write complete lines and make them durable before returning."""
        if not data:
            return
        if not data.endswith(b"\n"):
            raise ValueError("journal records end with a newline")
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def size(self) -> int:
        return self.path.stat().st_size

    def close(self) -> None:
        self._fh.close()


def _cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline (also dropping zero bytes a crash may leave);
    return how many bytes were removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("r+b") as fh:
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            fh.seek(start)
            chunk = fh.read(end - start)
            at = chunk.rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        if keep == size:
            return 0
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return size - keep
