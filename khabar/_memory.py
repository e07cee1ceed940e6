"""Process-wide memory settings for the long-running processes (``khabar serve``)."""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``n`` for the threads made from now on.

    glibc gives threads that allocate at once arenas of their own (up to 8 a core),
    each keeping what was freed in it: ``khabar serve`` answers on worker threads, and
    at 100k passages held ~100 MB more resident than with two arenas (838 against
    779 MB after 20 questions, docs/benchmarks.md). A ``MALLOC_ARENA_MAX`` in the
    environment is left to decide. Returns whether the cap was set."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, n))


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``).

    An article's ingest allocates and frees tens of MB (token batches, activations,
    sentence matrices) between the long-lived arrays: glibc keeps what is freed in
    the middle of a heap, so ``khabar serve`` grew ~10 MB a post and held it
    (docs/benchmarks.md, "The bot's memory with posts"). Called after each ingest in
    the bot; a few ms. Returns whether memory was released."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))
