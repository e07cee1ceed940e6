"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from khabar.model import Encoder, OnnxEncoder


@pytest.fixture(scope="module")
def e5(encoders: list[Encoder]) -> OnnxEncoder:
    """The session's real e5, on the ONNX runtime (what late and int8 sentences need)."""
    enc = encoders[0]
    assert isinstance(enc, OnnxEncoder)
    return enc
