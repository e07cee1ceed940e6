"""The store's tests that go through ``open_store``/``open_index`` (tests/store/_data.py)
run on both backends: SQLite + FAISS and Milvus Lite (embedded, in the test's temp
folder, no server). Tests that read SQLite's own tables or files stay on SQLite: they
test that layout, not the interface.

What does not pass on Milvus yet is listed in ``MILVUS_XFAIL`` with the reason, and
marked so (strict: a test that starts passing must leave the list).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from khabar.store import MilvusStore
from tests.store import _data

MILVUS_XFAIL: dict[str, str] = {
}


# A test that reaches into the SQLite store (its connection, FAISS indexes, private
# modules, a second ``Store`` on the path) tests that backend: its Milvus run is skipped
# with this reason, shown by ``pytest -rs``.
SQLITE_INTERNALS = ("_conn(", "_faiss", "Store(", "_write.", "VectorIndexes", "_schema",
                    "sqlite", "db_path", "faiss")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    source = inspect.getsource(metafunc.function)
    if "open_store(" not in source and "open_index(" not in source:
        return
    internals = [w for w in SQLITE_INTERNALS if w in source]
    milvus = pytest.param("milvus-lite", id="milvus-lite", marks=pytest.mark.skip(
        reason=f"reads the SQLite store's internals ({', '.join(internals)})")
    ) if internals else "milvus-lite"
    metafunc.parametrize("store_backend", ["sqlite", milvus], indirect=True)


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[str]:
    """The backend of this test (autouse, so that ``pytest_generate_tests`` can
    parametrise it; SQLite for the tests it leaves alone)."""
    backend: str = getattr(request, "param", "sqlite")
    if backend == "milvus-lite":
        reason = MILVUS_XFAIL.get(request.node.originalname)
        if reason:
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    monkeypatch.setattr(_data, "BACKEND", backend)
    yield backend


@pytest.fixture
def milvus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MilvusStore:
    """A Milvus Lite store of its own, for the tests of that backend's machinery."""
    monkeypatch.setattr(_data, "BACKEND", "milvus-lite")
    store = _data.open_store(tmp_path)
    assert isinstance(store, MilvusStore)
    return store
