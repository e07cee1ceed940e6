"""What pyproject.toml promises: optional front ends as extras, a licence file that says
what the metadata says, and a type check that covers the whole public surface."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_bot_and_the_llm_are_extras_not_core_dependencies() -> None:
    project = PYPROJECT["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert "python-telegram-bot" not in core and "langchain" not in core
    assert "langchain-core" in core  # the interfaces retrieval implements stay core
    extras = project["optional-dependencies"]
    assert [_name(r) for r in extras["telegram"]] == ["python-telegram-bot"]
    assert "job-queue" in extras["telegram"][0] and "webhooks" in extras["telegram"][0]
    assert [_name(r) for r in extras["llm"]] == ["langchain"]
    # The README's test command installs `.[test]`: the tests need both front ends.
    assert [_name(r) for r in extras["milvus"]] == ["pymilvus", "milvus-lite"]
    assert "milvus" not in " ".join(project["dependencies"])
    # The README's test command installs `.[test]`: the tests need both front ends and
    # both store backends.
    assert "khabar[telegram,llm,milvus]" in extras["test"]


def test_the_licence_file_is_the_mit_licence_the_metadata_names() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the khabar authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_the_dev_group_has_the_linter_and_the_type_checker() -> None:
    assert {_name(r) for r in PYPROJECT["dependency-groups"]["dev"]} >= {"ruff", "mypy"}


def _source(module: str) -> Path:
    """The source file of an installed module name, through the package-dir mapping."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        package = ".".join(parts[:n])
        folder = setuptools["package-dir"].get(package)
        if folder is not None or package == "khabar":
            base = REPO / (folder if folder is not None else "khabar")
            rest = parts[n:]
            path = base.joinpath(*rest)
            return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    raise AssertionError(module)


def test_mypy_checks_every_package_and_every_module_it_re_exports() -> None:
    checked = set(PYPROJECT["tool"]["mypy"]["modules"])
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert set(packages) <= checked
    for package in packages:
        tree = ast.parse(_source(package).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                assert f"{package}.{node.module}" in checked, (package, node.module)
    for module in checked:  # and each name is a real module
        assert _source(module).is_file(), module
