"""One store interface: both backends implement all of it, and the rest of khabar names
only the interface (``ArchiveStore``, ``open_store``), never a backend."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from khabar.store import ArchiveStore, MilvusStore, Store

REPO = Path(__file__).resolve().parents[2]
MEMBERS = [name for name in dir(ArchiveStore)
           if not name.startswith("_") and callable(getattr(ArchiveStore, name))]


@pytest.mark.parametrize("backend", [Store, MilvusStore], ids=["sqlite", "milvus"])
def test_each_backend_has_every_method_of_the_interface_with_its_parameters(
        backend: type) -> None:
    assert len(MEMBERS) > 40
    for name in MEMBERS:
        want = inspect.signature(getattr(ArchiveStore, name))
        got = inspect.signature(getattr(backend, name))
        assert list(got.parameters) == list(want.parameters), name
        for param, spec in want.parameters.items():
            assert got.parameters[param].kind == spec.kind, (name, param)
            assert got.parameters[param].default == spec.default, (name, param)


def test_index_retrieval_and_the_bot_name_no_backend() -> None:
    backends = {"Store", "MilvusStore"}
    for folder in ("index", "retrieval", "bot"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "khabar.store"):
                    names = {a.name for a in node.names}
                    assert not names & backends, f"{path}: imports {names & backends}"
                    assert node.module not in ("khabar.store._store", "khabar.store._milvus"
                                               ), path
