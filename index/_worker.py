"""Parsing under a budget: every item's parse and chunking in a worker process with
resource limits.

One hostile item (HTML, JSON-LD, a feed, an archive member, text) must not cost a batch
unbounded CPU or memory. lxml, feedparser and trafilatura run in C for long stretches
that no signal interrupts, so the budget is the kernel's: the worker sets its own
``RLIMIT_CPU`` soft limit to its CPU time so far plus ``item_cpu_seconds`` before each
item (the kernel kills it with SIGXCPU past that), and ``RLIMIT_AS`` to what it holds
once started plus ``item_memory_mb`` (an allocation past that fails: MemoryError, or the
worker dies). A worker that died or overran is replaced for the next item; the item
becomes a clear per-item error and the batch goes on. A wall-clock deadline (ten times
the budget, at least a minute) stops a worker that is starved or stuck.

The worker is a fresh interpreter running :func:`serve`, not a fork: a
fork would inherit the model's memory (and its address space, which the memory limit
counts) and the parent's threads. It is started at the first item and reused.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import resource
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from khabar._errors import KhabarError, ParseError
from khabar.store._schema import store_error
from khabar.store._types import Chunk

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<Q")  # a frame: its length, then a pickle
# The worker's program (-P: nothing from the working directory on its path).
_MAIN = ("import sys; from khabar.index._worker import serve; "
         "serve(float(sys.argv[1]), int(sys.argv[2]))")


def failure(exc: BaseException, name: str) -> str:
    """The one-line reason an item failed, whatever it raised: the batch goes on.

    khabar's own errors say it already; the rest are named for what they mean (a
    hostile file's nesting, a charset that is no charset, the disk); anything else is
    a bug of ours, logged with its traceback.
    """
    if isinstance(exc, KhabarError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    if isinstance(exc, UnicodeError):
        return f"cannot decode the text: {exc}"
    if isinstance(exc, sqlite3.Error):
        return str(store_error(exc))
    if isinstance(exc, MemoryError):
        return "too large to process in memory"
    log.error("%s: unexpected %s", name, type(exc).__name__, exc_info=exc)
    return f"internal error ({type(exc).__name__}): {exc}"


def _operations() -> dict[str, Callable[..., Any]]:
    """What the worker runs, by name: the parsers (index._parse) and the chunker."""
    from . import _parse

    return {"parse_document": _parse.parse_document, "parse_html": _parse.parse_html,
            "parse_feed": _parse.parse_feed, "entry_to_article": _parse.entry_to_article,
            "chunk": chunk}


_TOKENIZERS: dict[str, Any] = {}  # the worker's tokenizers, by ONNX export folder


def chunk(paragraphs: list[str], max_tokens: int, export: str | None) -> list[Chunk]:
    """An article's passages (index._chunk), tokens counted by the e5 tokenizer of the
    ONNX export folder ``export`` (the model's own count: the same chunks as in the
    ingesting process), or estimated when None."""
    from ._chunk import chunk_paragraphs

    count: Callable[[str], int] | None = None
    if export is not None:
        if export not in _TOKENIZERS:
            from khabar.model._onnx import PieceTokenizer, read_export_folder

            meta = read_export_folder(Path(export))
            if meta is None:
                raise ParseError(f"no ONNX export in {export}")
            _TOKENIZERS[export] = PieceTokenizer(Path(export), meta)
        tokenizer = _TOKENIZERS[export]

        def count(text: str) -> int:
            return len(tokenizer.encode(text, truncate=False))

    return chunk_paragraphs(paragraphs, max_tokens=max_tokens, count_tokens=count)


class ParseWorker:
    """Runs parsers in a worker process, one item at a time, within the budget.

    ``cpu_seconds`` of CPU and ``memory_mb`` of memory (beyond what the started worker
    holds) per item. Thread-safe: calls from several threads (a feed's pages) take
    turns. :meth:`close` (or the object's collection) ends the worker.
    """

    def __init__(self, cpu_seconds: float, memory_mb: int) -> None:
        self.cpu_seconds = cpu_seconds
        self.memory_mb = memory_mb
        self.started = 0  # workers started, for tests and benchmarks
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    @property
    def deadline(self) -> float:
        """Wall seconds an item may take: a busy machine stretches CPU time."""
        return max(60.0, 10 * self.cpu_seconds)

    def call(self, op: str, *args: Any) -> Any:
        """``op(*args)`` in the worker. A parser's error comes back as ParseError with
        its one-line reason; an overrun or a dead worker too, and the worker is
        replaced at the next call."""
        request = pickle.dumps((op, args), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            proc = self._running()
            reply, timed_out = None, False
            try:
                assert proc.stdin is not None and proc.stdout is not None
                _write_frame(proc.stdin, request)
                reply, timed_out = _read_frame(proc.stdout, time.monotonic() + self.deadline)
            except OSError:  # the worker died before reading it all (a broken pipe)
                pass
            if reply is None:
                raise ParseError(self._lost(proc, timed_out))
        status, value = pickle.loads(reply)
        if status == "error":
            raise ParseError(value)
        return value

    def close(self) -> None:
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._proc = self._finalizer = None

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1"}  # no thread pools (each reserves address space)
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-c", _MAIN, repr(self.cpu_seconds), str(self.memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.started += 1
        self._finalizer = weakref.finalize(self, _stop, self._proc)
        return self._proc

    def _lost(self, proc: subprocess.Popen[bytes], timed_out: bool) -> str:
        """The worker overran, or died: stop it, and say why as the item's error."""
        _stop(proc)
        self._proc = None
        code = proc.returncode
        if timed_out or code == -signal.SIGXCPU:
            return (f"took more than its budget of {self.cpu_seconds:g} s of CPU to read "
                    "(stopped; the budget is KHABAR_ITEM_CPU_SECONDS)")
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return (f"could not be read: the parser stopped ({how}); it may be too large for "
                f"its {self.memory_mb} MB (KHABAR_ITEM_MEMORY_MB) or malformed")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_frame(stream: IO[bytes], deadline: float) -> tuple[bytes | None, bool]:
    """One frame, or (None, timed out?) at the end of the stream or the deadline."""
    fd = stream.fileno()
    data = bytearray()
    want = _HEADER.size
    header_done = False
    while True:
        while len(data) < want:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None, True
            chunk = os.read(fd, min(want - len(data), 1 << 20))
            if not chunk:
                return None, False
            data += chunk
        if header_done:
            return bytes(data), False
        want = _HEADER.unpack(data)[0]
        data = bytearray()
        header_done = True


# -- the worker ---------------------------------------------------------------------------
def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _vm_bytes() -> int:
    """The address space this process holds now (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def serve(cpu_seconds: float, memory_mb: int) -> None:
    """The worker's loop: a request in on stdin, its reply out on stdout, until EOF."""
    ops = _operations()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the frames
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS,
                       (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        header = inp.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        request = inp.read(_HEADER.unpack(header)[0])
        # The kernel's clock: SIGXCPU (which kills) once this item's CPU is spent.
        soft = math.ceil(_cpu_seconds() + cpu_seconds)
        resource.setrlimit(resource.RLIMIT_CPU,
                           (soft if cpu_hard == resource.RLIM_INFINITY else min(soft, cpu_hard),
                            cpu_hard))
        try:
            op, args = pickle.loads(request)
            del request
            reply = pickle.dumps(("ok", ops[op](*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # every failure is the item's error
            reply = pickle.dumps(("error", failure(exc, "item")))
        _write_frame(out, reply)

