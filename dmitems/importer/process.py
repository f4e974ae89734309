"""Read → validate in a separate process, for big files: :class:`ProcessFeed`.

On the reader thread, parsing and validation hold the GIL that the loop
needs to encode the previous chunk for the insert; in a process of their own
they run truly in parallel.  Kept by measurement (issue 12's rule: ≥ 20 % on
import rows/s at 1M rows, documented APIs only): 1M-row CSV on the 2-core
development machine, same run, best of two, thread vs process: SQLite 179,922
vs 286,321 rows/s (+59 %); PostgreSQL figures are in the module's commit and
in the importer's README notes.

The child is a fresh interpreter (``python -c``), never a fork of this
process, which runs a loop and threads; unlike multiprocessing's "spawn" it
does not re-run the caller's ``__main__``.  It opens the file itself, builds
the same :class:`~dmitems.importer.chunks.Chunk` objects and writes them to a
pipe as messages (a tag byte, an 8-byte length, a marshal body).  Its writes
block until this side reads, and this side's thread takes at most ``ahead``
chunks ahead of the loop (as :class:`~dmitems.importer.chunks.Feed` does), so
memory stays flat.  It ignores SIGINT (Ctrl-C reaches the whole process
group; this process decides what an interrupt means) and is ended by
:meth:`ProcessFeed.stop`; if this process dies, its next write fails and it exits.
"""

from __future__ import annotations

import contextlib
import gc
import marshal
import pickle
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dmitems.errors import DmitemsError
from dmitems.importer.chunks import Chunk, Feed, validated_chunks

if TYPE_CHECKING:
    from dmitems.formats import Source

# Files smaller than this are read on the thread instead.  Starting the reader
# process (a fresh interpreter importing pydantic, SQLAlchemy and dmitems) costs
# about 0.25 s before its first chunk arrives, against 0.03 s on the thread;
# measured about even at 300k rows (27 MB of CSV).
PROCESS_THRESHOLD = 32 * 1024 * 1024

# The reader process's program; argv[1] is where this copy of dmitems lives, in case the
# parent found it through its own sys.path (appended, so it never shadows anything).
_READER_PROGRAM = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from dmitems.importer.process import reader_main; reader_main()"
)
_CHUNK, _END, _ERROR = b"c", b"z", b"e"
_HEADER = struct.Struct("<cQ")
_PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


class ProcessFeed(Feed):
    """A :class:`Feed` whose chunks are read and validated by a child process."""

    def __init__(self, source: Source, batch_size: int, skip_rows: int = 0, ahead: int = 2) -> None:
        import json
        import os
        import signal
        import subprocess

        read_end, write_end = os.pipe()
        _widen_pipe(write_end)
        self._receiver: IO[bytes] = open(read_end, "rb", buffering=_PIPE_SIZE)  # noqa: SIM115
        settings = json.dumps(
            [write_end, source.path, source.label, source.format, source.encoding,
             source.ignore_extra, batch_size, skip_rows]
        )
        # SIGINT stays blocked from the fork until the child has set it to be ignored
        # (the mask survives exec), so a Ctrl-C during its start-up cannot print a
        # traceback from it.  Here it is only held back, then delivered as usual.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _READER_PROGRAM, str(Path(__file__).resolve().parents[2]),
                 settings],
                # Nothing may reach the user's terminal or --json output from here:
                # errors travel through the pipe; a crash shows as the exit code.
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(write_end,),
            )
        except BaseException:
            self._receiver.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(write_end)
        self._finished = False  # the child sent its last message and is exiting
        super().__init__(self._received(), ahead)

    def _received(self) -> Iterator[Chunk]:
        while True:
            header = self._receiver.read(_HEADER.size)
            kind, size = _HEADER.unpack(header) if len(header) == _HEADER.size else (b"", 0)
            body = self._receiver.read(size) if kind else b""
            if not kind or len(body) < size:
                if self._stopped.is_set():
                    return
                raise DmitemsError(
                    "the import's reader process ended unexpectedly "
                    f"(exit code {self._process.wait()})"
                )
            if kind == _CHUNK:
                yield unpack_chunk(body)
            elif kind == _ERROR:
                self._finished = True
                raise pickle.loads(body)
            else:
                self._finished = True
                return

    def stop(self) -> None:
        import subprocess

        super().stop()
        if not self._finished and self._process.poll() is None:
            self._process.terminate()  # still reading: the import stopped early
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._thread.join(5)
        self._receiver.close()


def pack_chunk(chunk: Chunk) -> bytes:
    """A chunk as marshal data (``m``), or pickle (``p``) for what marshal cannot hold.

    marshal writes and reads lists of tuples of plain values several times
    faster than pickle (measured 0.23 µs a row for both ends, against about
    1 µs to unpickle alone), and the receiving side holds the GIL the loop
    needs while it decodes.
    """
    body = (chunk.read, chunk.bytes_read, chunk.positions, chunk.values, chunk.rejects)
    try:
        return b"m" + marshal.dumps(body)
    except ValueError:
        return b"p" + pickle.dumps(body)


def unpack_chunk(data: bytes) -> Chunk:
    body = marshal.loads(data[1:]) if data[:1] == b"m" else pickle.loads(data[1:])
    read, bytes_read, positions, values, rejects = body
    return Chunk(values, positions, rejects, read, bytes_read)


def _widen_pipe(descriptor: int) -> None:
    """Let the pipe hold a whole chunk (Linux), so this side reads one in a call or two.

    Each read gives up the GIL and must win it back from the loop thread, which
    may hold it for a switch interval (5 ms) while it encodes COPY data: with the
    default 64 KiB pipe a chunk of 10,000 rows took ~16 reads.
    """
    import fcntl

    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(descriptor, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def _send(stream: IO[bytes], kind: bytes, body: bytes = b"") -> None:
    stream.write(_HEADER.pack(kind, len(body)))
    stream.write(body)
    stream.flush()


def reader_main() -> None:
    """The reader process: a message per chunk, then the end or the error.

    Whatever goes wrong is sent to the parent and raised there, as on the
    thread, so the user sees the same one line.
    """
    import json
    import signal

    from dmitems.formats import open_source

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    descriptor, path, label, fmt, encoding, ignore_extra, batch_size, skip_rows = json.loads(
        sys.argv[2]
    )
    sender = open(descriptor, "wb", buffering=_PIPE_SIZE)  # noqa: SIM115 - closed below
    gc.freeze()  # as the parent does while it imports
    source = None
    try:
        source = open_source(path, fmt, encoding, ignore_extra)
        source.label = label  # messages name the file as the user did
        for chunk in validated_chunks(source, batch_size, skip_rows):
            _send(sender, _CHUNK, pack_chunk(chunk))
        _send(sender, _END)
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped listening
    except BaseException as exc:  # noqa: BLE001 - raised in the parent, as Feed does
        _send_error(sender, exc)
    finally:
        if source is not None:
            source.close()
        with contextlib.suppress(OSError):
            sender.close()


def _send_error(sender: IO[bytes], exc: BaseException) -> None:
    error: Any = exc
    try:
        body = pickle.dumps(error)
    except Exception:  # noqa: BLE001 - send what can be sent
        body = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
    with contextlib.suppress(OSError):
        _send(sender, _ERROR, body)
