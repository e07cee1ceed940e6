"""The malloc arena cap of the long-running processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from khabar._memory import limit_malloc_arenas


def test_the_environment_decides_when_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_cap_is_set_on_glibc() -> None:
    # In a fresh process (the cap is process-wide): mallopt accepts it.
    code = ("import os; os.environ.pop('MALLOC_ARENA_MAX', None); "
            "from khabar._memory import limit_malloc_arenas as f; print(f(2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    assert out == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_heap_pages_go_back_to_the_system() -> None:
    # Many blocks freed under one kept at the heap's top: glibc keeps them until
    # trimmed; after release_free_memory the process's anonymous memory falls.
    code = """
import ctypes
from khabar._memory import release_free_memory
def anon():
    for line in open('/proc/self/status'):
        if line.startswith('RssAnon'):
            return int(line.split()[1]) // 1024
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(4000) for _ in range(50_000)]
for b in blocks:
    ctypes.memset(b, 1, 4000)
held = anon()
for b in blocks[:-1]:  # the last, at the heap's top, stays: the rest cannot be trimmed
    libc.free(b)
kept = anon()
print(release_free_memory(), held - kept < 50, kept - anon() > 100)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["True", "True", "True"]
