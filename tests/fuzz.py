"""What the fuzz tests share (tests/*/test_fuzz_*.py): their hypothesis settings, a
per-input CPU budget, the errors a parser may raise, and a count of inputs tried.

The tests run ``KHABAR_FUZZ_EXAMPLES`` examples per target (default 40, to keep the
suite quick); ``bench/reliability.py fuzz --examples N`` sets it higher, runs the same
properties and reports ``TRIED`` per target with the failures.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from khabar import KhabarError

EXAMPLES = int(os.environ.get("KHABAR_FUZZ_EXAMPLES", "40"))
# Process CPU time one input may take: generous (a slow machine, a cold cache), but a
# quadratic or exponential path on a hostile input blows through it.
BUDGET_S = float(os.environ.get("KHABAR_FUZZ_BUDGET", "2.0"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
TRIED: Counter[str] = Counter()  # target -> inputs tried (this process)
REFUSED: Counter[str] = Counter()  # target -> inputs refused with a documented error


@contextlib.contextmanager
def budget(target: str, allowed: tuple[type[BaseException], ...] = (KhabarError,)
           ) -> Iterator[None]:
    """One input to ``target``: within the CPU budget, and either accepted or refused
    with one of the ``allowed`` errors carrying a clear (non-empty, one-line) message.
    Anything else escapes and fails the property."""
    TRIED[target] += 1
    t0 = time.process_time()
    try:
        yield
    except allowed as exc:
        REFUSED[target] += 1
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} without a message"
        assert "Traceback" not in message and len(message) < 2000, message[:300]
    used = time.process_time() - t0
    assert used < BUDGET_S, f"{target}: {used:.2f} s of CPU for one input"


# Pieces hostile input is made of: markup, entities, direction marks, controls, scripts.
HOSTILE = st.sampled_from([
    "<", ">", "&", "&amp;", "&lt;b&gt;", "&#0;", "&#x110000;", "&bogus;", '"', "'", "<b>",
    "</b>", "<i>", '<a href="javascript:alert(1)">', "</a>", "<tg-spoiler>", "<pre>",
    "<code>", "<script>", "<!--", "-->", "<![CDATA[", "]]>", "\x00", "\x1b[31m", "\x85",
    "\u200f", "\u2068", "\u2069", "\u202e", "\ufeff", "\ud7ff", "🙂", "👨‍👩‍👧", "ء", "قال",
    "\n", "\r\n", "\n\n", "\t", " ", ".", "؟", "[1]", "[", "]", "/", "@", "#", "=", ",",
    "http://", "https://x.y/", "\\", "{", "}", ":", "-", "—",
])
TEXT = st.lists(st.one_of(st.text(max_size=40), HOSTILE), max_size=40).map("".join)


@st.composite
def long_text(draw: st.DrawFn, limit: int = 30_000) -> str:
    """Text of any length up to ``limit``: a hostile piece repeated, or plain text."""
    piece = draw(TEXT)
    times = draw(st.integers(1, max(1, limit // max(1, len(piece)))))
    return (piece * times)[:limit]
