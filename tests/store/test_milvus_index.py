"""The Milvus passages collection's layout at scale (khabar/store/_milvus_index.py): the
dense index (FLAT on Milvus Lite, HNSW on a server) and the language as partition key;
a search of one language finds that language's passages only, whatever partition the
languages hash to; an existing collection keeps its layout, a reindex makes the new one.
The server's tests start a Milvus 2.3 server (the ``milvus`` package) and skip without it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from khabar.store import ArchiveStore, MilvusStore, SpaceInfo
from khabar.store._milvus_index import dense_index, kind_of, search_params
from tests.fakes import HashEncoder
from tests.store._data import HASH_SPACE, new_article, open_store

# More languages than Milvus Lite's 16 partitions (and than the tests' few): two of
# them share one, so only the filter tells them apart there.
LANGS = [f"l{i:02d}" for i in range(20)]
WIDE = HashEncoder(dim=96, name="wider")
WIDE_SPACE = SpaceInfo("e5", WIDE.fingerprint, WIDE.dim)


def _lang_field(store: MilvusStore) -> dict:
    with store._lock:
        fields = store._client.describe_collection(store._name("passages"))["fields"]
    return next(f for f in fields if f["name"] == "lang")


def _put_languages(store: ArchiveStore) -> None:
    for lang in LANGS:
        store.put(new_article(f"News {lang}", [f"The same harbour story, told in {lang}."],
                              url=f"https://x.test/{lang}", lang=lang))


def test_the_choice_of_index_and_its_search_breadth() -> None:
    assert dense_index(lite=True, index_type="auto") == ("FLAT", {})
    kind, params = dense_index(lite=False, index_type="auto")
    assert kind == "HNSW" and params["M"] > 0 and params["efConstruction"] > 0
    assert dense_index(lite=False, index_type="flat")[0] == "FLAT"
    assert dense_index(lite=True, index_type="hnsw")[0] == "HNSW"
    assert search_params("FLAT", 10) == {"metric_type": "IP"}
    # HNSW returns at most ef hits: ef follows k up (to Milvus's bound).
    assert search_params("HNSW", 10)["params"]["ef"] >= 10
    assert search_params("HNSW", 500)["params"]["ef"] == 500
    assert search_params("HNSW", 10**6)["params"]["ef"] == 32_768
    assert kind_of({"index_type": "HNSW"}) == "HNSW" and kind_of(None) == "FLAT"


def test_a_search_of_one_language_finds_that_language_only(tmp_path: Path) -> None:
    """On both backends; on Milvus the language is the partition key of the passages
    (Lite hashes it into 16 partitions: 20 languages share some)."""
    store = open_store(tmp_path)
    _put_languages(store)
    if isinstance(store, MilvusStore):
        assert _lang_field(store).get("is_partition_key") is True
    q = HashEncoder().embed_queries(["the same harbour story"])[0]
    for lang in LANGS:
        hits = store.search("e5", lang, q, 50)
        assert len(hits) == 1
        assert store.passages([hits[0][0]])[hits[0][0]].lang == lang
    assert store.passage_filter(langs=["l03", "l17"]) is not None
    both = store.passage_filter(langs=["l03", "l17"])
    assert {store.passages([pid])[pid].lang for pid, _ in
            store.search("e5", "l03", q, 50, both)} == {"l03"}
    store.close()


def test_lite_keeps_flat_and_honours_an_explicit_hnsw(tmp_path: Path) -> None:
    flat = MilvusStore(str(tmp_path / "a" / "k.db"), cache=tmp_path / "c")
    flat.bind_spaces([HASH_SPACE])
    assert flat.dense_index_kinds() == {"e5": "FLAT"} and flat.stats()["index_type"] == "flat"
    flat.close()
    hnsw = MilvusStore(str(tmp_path / "b" / "k.db"), cache=tmp_path / "c", index_type="hnsw")
    hnsw.bind_spaces([HASH_SPACE])
    _put_languages(hnsw)
    assert hnsw.dense_index_kinds() == {"e5": "HNSW"} and hnsw.stats()["index_type"] == "hnsw"
    q = HashEncoder().embed_queries(["The same harbour story, told in l05."])[0]
    hits = hnsw.search("e5", "l05", q, 10)
    assert len(hits) == 1 and hnsw.passages([hits[0][0]])[hits[0][0]].lang == "l05"
    hnsw.close()


def test_an_existing_collection_keeps_its_layout_and_a_reindex_makes_the_new_one(
        tmp_path: Path) -> None:
    """A store made before (FLAT, no partition key) opens as it is under today's
    settings, is searched with its own index's parameters, and `khabar reindex`
    (a new passages collection) gives it today's layout."""
    uri = str(tmp_path / "m" / "k.db")
    old = MilvusStore(uri, cache=tmp_path / "c", index_type="flat", lang_partitions=False)
    old.bind_spaces([HASH_SPACE])
    _put_languages(old)
    assert _lang_field(old).get("is_partition_key") in (None, False)
    old.close()
    store = MilvusStore(uri, cache=tmp_path / "c", index_type="hnsw")
    assert store.dense_index_kinds() == {"e5": "FLAT"}
    assert _lang_field(store).get("is_partition_key") in (None, False)
    q = HashEncoder().embed_queries(["The same harbour story, told in l07."])[0]
    top = store.search("e5", "l07", q, 3)
    assert [store.passages([pid])[pid].lang for pid, _ in top] == ["l07"]
    rows = [(r["id"], r["text"]) for r in store.iter_passages()]
    store.reindex_begin([WIDE_SPACE])
    vecs = WIDE.embed_passages([t for _, t in rows])
    store.reindex_write("e5", [pid for pid, _ in rows], vecs, [v.reshape(1, -1) for v in vecs])
    store.reindex_commit([WIDE_SPACE], sentences=True)
    assert store.dense_index_kinds() == {"e5": "HNSW"}
    assert _lang_field(store).get("is_partition_key") is True
    assert store.check([WIDE_SPACE]) == []
    q = WIDE.embed_queries(["The same harbour story, told in l07."])[0]
    top = store.search("e5", "l07", q, 3)
    assert [store.passages([pid])[pid].lang for pid, _ in top] == ["l07"]
    store.close()


# -- on a server ---------------------------------------------------------------------------
server = pytest.mark.skipif(importlib.util.find_spec("milvus") is None,
                            reason="a Milvus server: pip install milvus==2.3.5")


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import milvus_writers as W

    with W.serve(tmp_path_factory.mktemp("milvus")) as uri:
        yield "http://" + uri.removeprefix("milvus://")


@server
@pytest.mark.milvus_server
def test_a_server_gets_hnsw_and_the_language_partition_key(server_uri: str,
                                                            tmp_path: Path) -> None:
    store = MilvusStore(server_uri, cache=tmp_path)
    store.bind_spaces([HASH_SPACE])
    assert store.dense_index_kinds() == {"e5": "HNSW"} and store.stats()["index_type"] == "hnsw"
    assert _lang_field(store).get("is_partition_key") is True
    _put_languages(store)
    q = HashEncoder().embed_queries(["The same harbour story, told in l01."])[0]
    for lang in LANGS:
        hits = store.search("e5", lang, q, 50)
        assert len(hits) == 1 and store.passages([hits[0][0]])[hits[0][0]].lang == lang
    assert store.check([HASH_SPACE]) == []
    store.close()


def test_reindex_layout_moves_an_old_store_without_embedding_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`khabar reindex --layout`: the same passages (ids, texts, vectors) in a new
    collection with the language partition key; another client follows at its next
    read; a second run has nothing to do."""
    import os

    from khabar.bot import cli

    uri = tmp_path / "m" / "k.db"
    old = MilvusStore(str(uri), cache=tmp_path / "home" / "milvus-cache",
                      lang_partitions=False)
    old.bind_spaces([HASH_SPACE])
    _put_languages(old)
    before = {pid: p.text for pid, p in old.passages(
        [r["id"] for r in old.iter_passages()]).items()}
    vectors = old.vectors("e5", sorted(before))
    old.close()
    for key in [k for k in os.environ if k.startswith("KHABAR_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("KHABAR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KHABAR_STORE", f"milvus-lite://{uri}")
    reader = MilvusStore(str(uri), cache=tmp_path / "reader")  # another client, open
    assert cli.main(["reindex", "--layout"]) == cli.EXIT_OK
    assert f"moved {len(before)} passages" in capsys.readouterr().out
    reader.generation()  # its next question reads the state: the new collection
    q = HashEncoder().embed_queries(["The same harbour story, told in l04."])[0]
    hits = reader.search("e5", "l04", q, 5)
    assert [reader.passages([p])[p].lang for p, _ in hits] == ["l04"]
    assert _lang_field(reader).get("is_partition_key") is True
    reader.close()
    store = MilvusStore(str(uri), cache=tmp_path / "home" / "milvus-cache")
    assert _lang_field(store).get("is_partition_key") is True
    assert store._passages_name == "passages_2" and store.check([HASH_SPACE]) == []
    assert {pid: p.text for pid, p in store.passages(sorted(before)).items()} == before
    got = store.vectors("e5", sorted(before))
    assert all(np.allclose(got[pid], vectors[pid]) for pid in before)
    q = HashEncoder().embed_queries(["The same harbour story, told in l11."])[0]
    hits = store.search("e5", "l11", q, 5)
    assert [store.passages([p])[p].lang for p, _ in hits] == ["l11"]
    assert store.relayout() is None
    store.close()
    assert cli.main(["reindex", "--layout"]) == cli.EXIT_OK
    assert "current layout already" in capsys.readouterr().out
