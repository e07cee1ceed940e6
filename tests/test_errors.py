"""The exception tree of ``khabar._errors``: one root, exported from ``khabar``."""

from __future__ import annotations

import pickle

from khabar.retrieval import CitationError as RetrievalCitationError

import khabar
from khabar import (
    CitationError,
    FilterError,
    IngestError,
    KhabarError,
    SourceError,
)


def test_every_exported_error_derives_from_khabar_error() -> None:
    errors = [getattr(khabar, n) for n in khabar.__all__ if n.endswith("Error")]
    assert CitationError in errors and FilterError in errors and SourceError in errors
    assert all(issubclass(e, KhabarError) for e in errors)


def test_places_in_the_tree() -> None:
    assert issubclass(SourceError, IngestError)
    assert issubclass(FilterError, ValueError)  # as before it joined the tree
    assert issubclass(CitationError, AssertionError)  # a bug, not the user's doing
    assert RetrievalCitationError is CitationError  # the public retrieval name stays


def test_source_error_is_an_item_with_a_one_line_reason() -> None:
    err = SourceError("a.zip!b.txt", "too large")
    assert (err.name, err.message, str(err)) == ("a.zip!b.txt", "too large",
                                                 "a.zip!b.txt: too large")
    again = pickle.loads(pickle.dumps(err))
    assert (again.name, again.message) == (err.name, err.message)
