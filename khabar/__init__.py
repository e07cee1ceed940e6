"""khabar (خبر): answers Arabic and English questions about news coverage from the
articles it has indexed, with numbered, checkable citations.

Data flows one way: articles → :mod:`khabar.index` → :mod:`khabar.store` ←
:mod:`khabar.retrieval` ← :mod:`khabar.bot`. This root holds what every part
shares and nothing heavy (importing it loads no model): the settings and the
exception tree. Text analysis is :mod:`khabar.text`, the encoders :mod:`khabar.model`.
"""

from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    BlockedURLError,
    CitationError,
    ConfigError,
    FetchError,
    FilterError,
    IngestError,
    KhabarError,
    ModelError,
    ModelMismatchError,
    ParseError,
    SourceError,
    StoreError,
)
from ._settings import DEFAULT_MODEL, Settings

try:
    __version__ = version("khabar")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_MODEL",
    "BlockedURLError",
    "CitationError",
    "ConfigError",
    "FetchError",
    "FilterError",
    "IngestError",
    "KhabarError",
    "ModelError",
    "ModelMismatchError",
    "ParseError",
    "Settings",
    "SourceError",
    "StoreError",
    "__version__",
]
