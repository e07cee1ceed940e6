"""What the store tests share: an index over a hash encoder, and article texts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import numpy as np
from khabar.index import Article, Index

from khabar import Settings
from khabar.store import (
    ArchiveStore,
    Chunk,
    MilvusStore,
    NewArticle,
    SpaceInfo,
    Store,
    content_hash,
)
from khabar.store._changes import bump_epoch
from khabar.store._schema import f16, transaction
from khabar.store._write import _sentence_rows
from tests.fakes import HashEncoder

BODY = ["The army said on Wednesday that it struck targets near the northern city, "
        "according to two officials.",
        "Officials said the strikes would continue despite the warnings from abroad and "
        "the protests at home."]
THIRD = "A third paragraph was added to the story later in the day by the editors on the desk."
EXTRA = "An extra local paragraph about the reaction of residents in the region and the mayor."
FOOTBALL = "Completely different words about football games, league tables and the transfers."

HASH_SPACE = SpaceInfo("e5", HashEncoder().fingerprint, HashEncoder().dim)


BACKEND = "sqlite"
"""The backend that ``open_store`` and ``open_index`` open: tests/store/conftest.py's
``store_backend`` fixture sets it for each test that runs on both."""


def store_setting(home: Path) -> str | None:
    """``KHABAR_STORE`` for a home of this backend (None: the SQLite default)."""
    return f"milvus-lite://{home}/milvus/khabar.db" if BACKEND == "milvus-lite" else None


def open_index(home: Path, encoders=None, **settings) -> Index:
    return Index.open(Settings(home=home, store=store_setting(home), **settings),
                      encoders=encoders or [HashEncoder()])


def article(title: str, body: list[str], url: str | None = None, outlets=("Reuters",),
            published: datetime | None = None) -> Article:
    return Article(title=title, paragraphs=body, outlets=list(outlets), url=url,
                   published=published, lang="en")


def open_store(path: Path, **kwargs) -> ArchiveStore:
    """A store bound to the hash encoder's space, written without an Index."""
    store: ArchiveStore
    if BACKEND == "milvus-lite":
        store = MilvusStore(str(path / "milvus" / "khabar.db"), cache=path / "milvus-cache")
    else:
        store = Store(path, **kwargs)
    store.bind_spaces([HASH_SPACE])
    return store


def location(path: Path) -> str:
    """Where ``open_store(path)`` keeps the archive, as ``stats()["path"]`` names it."""
    return str(path / "milvus" / "khabar.db") if BACKEND == "milvus-lite" else str(path)


def reopen(path: Path) -> ArchiveStore:
    """Another handle on the store ``open_store(path)`` made, as another process (or, on
    Milvus Lite, which lets one process open a file, another client) would open it."""
    if BACKEND == "milvus-lite":
        return MilvusStore(str(path / "milvus" / "khabar.db"), cache=path / "milvus-cache")
    return Store(path)


def new_article(title: str, body: list[str], url: str | None = None,
                lang: str = "en") -> NewArticle:
    """What the indexer would hand the store: one chunk per paragraph, e5 vectors."""
    art = Article(title=title, paragraphs=body, outlets=["Reuters"], url=url, lang=lang)
    chunks = [Chunk(i, text, lang) for i, text in enumerate(body)]
    return NewArticle(art, chunks, {"e5": HashEncoder().embed_passages(body)},
                      content_hash(art))


def forge_vectors(store: ArchiveStore, space: str, rows: Iterable[tuple[int, np.ndarray]]
                  ) -> None:
    """Overwrite one space's vectors behind khabar's back, through the SQL a reindex
    writes (one transaction, a new epoch): another model's vectors, for the tests that
    need a store the recorded model did not make. On Milvus, its rows rewritten."""
    if isinstance(store, MilvusStore):
        store.replace_vectors(space, rows)
        return
    assert isinstance(store, Store)
    db = store._conn()
    with transaction(db):
        db.execute("DELETE FROM vectors WHERE space = ?", (space,))
        db.executemany("INSERT INTO vectors(passage_id, space, vec) VALUES (?,?,?)",
                       ((pid, space, f16(v)) for pid, v in rows))
        bump_epoch(db)


def forge_sentence_vectors(store: ArchiveStore, space: str,
                           rows: Iterable[tuple[int, np.ndarray]]) -> None:
    """Overwrite one space's sentence vectors, as :func:`forge_vectors` does vectors."""
    if isinstance(store, MilvusStore):
        store.replace_sentence_vectors(space, rows)
        return
    assert isinstance(store, Store)
    db = store._conn()
    with transaction(db):
        db.execute("DELETE FROM sentence_vectors WHERE space = ?", (space,))
        db.executemany("INSERT INTO sentence_vectors(passage_id, space, vecs) VALUES (?,?,?)",
                       list(_sentence_rows(db, space, rows)))
