"""Open the archive that ``KHABAR_STORE`` names, whichever backend holds it."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from khabar._errors import ConfigError

from ._base import ArchiveStore

if TYPE_CHECKING:
    from khabar import Settings

MILVUS_EXTRA = "pip install 'khabar[milvus]'"


def open_store(settings: Settings) -> ArchiveStore:
    """The SQLite + FAISS store in a folder (the default), or Milvus (Lite or server).

    Milvus's client comes with the milvus extra; without it, a ConfigError says how
    to install it (the CLI exits 2, as for any bad setting)."""
    kind, where = settings.store_location
    if kind == "sqlite":
        from ._store import Store

        return Store(settings.store_dir, index_type=settings.index_type,
                     hnsw_threshold=settings.hnsw_threshold)
    if not _installed("pymilvus"):
        raise ConfigError(f"KHABAR_STORE={settings.store} needs the milvus extra: "
                          f"{MILVUS_EXTRA}")
    if kind == "milvus-lite" and not _installed("milvus_lite"):
        raise ConfigError(f"KHABAR_STORE={settings.store} needs Milvus Lite, in the "
                          f"milvus extra: {MILVUS_EXTRA}")
    from ._milvus import MilvusStore

    return MilvusStore(where if kind == "milvus-lite" else f"http://{where}",
                       cache=settings.home / "milvus-cache", index_type=settings.index_type)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a finder that refuses it (tests/bot/test_without_extras.py)
        return False
