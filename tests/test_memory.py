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
