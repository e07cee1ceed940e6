"""Application code both front ends call: open the index and seed an empty one."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import as_file, files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from khabar.index import Index

    from khabar import Settings


def open_index(settings: Settings, *, seed: bool = True,
               progress: Callable[[str], None] | None = None) -> Index:
    """Open the store, loading the model; index the seed articles if it is empty."""
    from khabar.index import Index

    say = progress or (lambda _msg: None)
    index = Index.open(settings, progress=progress)
    if seed and index.store.count_articles() == 0:
        with as_file(files("khabar.seeds")) as seeds:
            # The folder's walk takes only article files (not this package's Python).
            say(f"the index is empty: indexing the seed articles in {seeds}…")
            report = index.add_path(seeds)
            say(f"seeds: {report.summary()}")
    return index
