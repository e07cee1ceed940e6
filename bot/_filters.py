"""Periods and filters as typed by people: ``24h``, ``7d``, ``2015-09-30``, ``outlet=…``.

Shared by the CLI flags and the REPL's ``:filter`` / ``:summary`` so both accept
the same words. Errors are :class:`FilterError` with a message fit to show as is.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from khabar import FilterError

if TYPE_CHECKING:
    from khabar.retrieval import Filters

PERIOD_HELP = "24h, 7d, 2w, 1y, 30m (minutes) or a date like 2015-09-30"


def is_period(value: str) -> bool:
    try:
        parse_since(value)
    except FilterError:
        return False
    return True


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """The start of a period: ``24h``, ``7d``, ``2w``, ``1y`` back, or a date.

    Durations are read by ``retrieval.parse_duration``, as Telegram's ``/summary``
    reads them (``30m`` is minutes, Arabic units work); years are added here.
    """
    from khabar.retrieval import parse_duration  # lazily: the CLI's --help must not wait for it

    value = value.strip().lower()
    now = now or datetime.now(UTC)
    try:
        if (span := parse_duration(value)) is not None:
            return now - span
        if value[-1:] == "y" and value[:-1].isdigit():
            return now - timedelta(days=365 * int(value[:-1]))
    except OverflowError:  # "5000y": before the year 1, which no date can be
        raise FilterError(f"{value!r} reaches back before the year 1; a period is "
                          f"{PERIOD_HELP}") from None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"a period is {PERIOD_HELP}, not {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_filter_args(args: Sequence[str] | str, known_outlets: Sequence[str] = ()
                      ) -> Filters:
    """``outlet=Reuters outlet="Al Jazeera" since=7d until=2024-01-01 lang=ar,en``.

    Outlets are matched case-insensitively against ``known_outlets`` (when given)
    so a typo is reported instead of silently filtering everything out.
    """
    from khabar.retrieval import Filters

    if isinstance(args, str):
        try:
            args = shlex.split(args)
        except ValueError:  # an unbalanced quote: take the words as typed
            args = args.split()
    f = Filters()
    known = {o.casefold(): o for o in known_outlets}
    for arg in args:
        key, sep, value = arg.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or not value:
            raise FilterError(f"filters are key=value (outlet, since, until, lang), not {arg!r}")
        if key in ("outlet", "outlets", "source"):
            for name in (v.strip() for v in value.split(",") if v.strip()):
                if known and name.casefold() not in known:
                    raise FilterError(f"no outlet {name!r} is indexed (:sources lists them)")
                f.outlets.append(known.get(name.casefold(), name))
        elif key == "since":
            f.since = parse_since(value)
        elif key == "until":
            f.until = parse_since(value)
        elif key in ("lang", "langs", "language"):
            langs = [v.strip().lower() for v in value.split(",") if v.strip()]
            bad = [lg for lg in langs if lg not in ("ar", "en")]
            if bad:
                raise FilterError(f"lang is ar or en, not {bad[0]!r}")
            f.langs += langs
        else:
            raise FilterError(f"unknown filter {key!r} (outlet, since, until, lang)")
    return f
