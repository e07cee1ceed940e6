"""Shared fixtures. The real model is built and loaded once per test session.

``KHABAR_TEST_HOME`` may name a folder whose ``models/`` already holds the built
model, to skip the build when running tests repeatedly by hand. It is only read: the
session's home mirrors it (its files linked, its folders made anew), so what the
tests add to a model folder, such as a missing ONNX export, goes to the mirror.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from khabar.index import Index

from khabar import Settings
from khabar.model import Encoder, load_encoders, resolve_model_path

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KHABAR_HOME whose models/ holds the built default model."""
    given = os.environ.get("KHABAR_TEST_HOME")
    home = tmp_path_factory.mktemp("khabar-models")
    if given:
        mirror(Path(given) / "models", home / "models")
    resolve_model_path(Settings(home=home))
    return home


def mirror(src: Path, dest: Path) -> None:
    """``dest`` as a copy of the folder ``src`` whose files are symlinks to src's."""
    for root, dirs, files in os.walk(src):  # symlinked folders are not entered
        here = dest / Path(root).relative_to(src)
        here.mkdir(parents=True, exist_ok=True)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            (here / name).symlink_to((Path(root) / name).resolve())


@pytest.fixture(scope="session")
def e5_model_dir(model_home: Path) -> Path:
    path, _ = resolve_model_path(Settings(home=model_home))
    return path


@pytest.fixture(scope="session")
def encoders(model_home: Path) -> list[Encoder]:
    """The real encoders (e5 + USE), loaded once per session."""
    return load_encoders(Settings(home=model_home))


def share_models(home: Path, model_home: Path) -> Path:
    """Make ``home`` a KHABAR_HOME that uses the session's built model (no rebuild)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(model_home / "models", target_is_directory=True)
    return home


@pytest.fixture
def khabar_home(tmp_path: Path, model_home: Path) -> Path:
    """A fresh, empty KHABAR_HOME sharing the session's built model."""
    return share_models(tmp_path / "home", model_home)


@pytest.fixture
def settings(khabar_home: Path) -> Settings:
    return Settings(home=khabar_home)


@pytest.fixture
def real_index(settings: Settings, encoders: list[Encoder]) -> Iterator[Index]:
    """An empty index on the real encoders."""
    ix = Index.open(settings, encoders=encoders)
    yield ix
    ix.close()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, model_home: Path,
               encoders: list[Encoder]) -> Iterator[Index]:
    """The seed article indexed once with the real encoders; treat as read-only."""
    home = share_models(tmp_path_factory.mktemp("seed-home"), model_home)
    ix = Index.open(Settings(home=home), encoders=encoders)
    report = ix.add_path(SEEDS)
    assert report.count("added") == 1, report.summary()
    yield ix
    ix.close()
