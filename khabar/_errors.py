"""The exception hierarchy of khabar.

Every error khabar raises on purpose derives from :class:`KhabarError`, so a front
end can catch one type, print ``str(exc)`` as a one-line message and exit.

    KhabarError
    ├── ConfigError          bad setting (arguments, environment, .env, khabar.toml)
    ├── FilterError          a period or filter as typed ("7d", "outlet=…") cannot be read
    ├── ModelError           the embedding model cannot be built or loaded
    │   └── ModelMismatchError   the store was built with another model
    ├── IngestError          one item could not be ingested (reported, batch goes on)
    │   ├── ParseError       malformed or unsupported content
    │   ├── SourceError      a file, folder or archive member cannot be read
    │   └── FetchError       a URL could not be fetched
    │       └── BlockedURLError  the URL points at a private/loopback address
    ├── StoreError           the store is unusable (corrupt, locked, inconsistent)
    └── CitationError        an answer cites what it does not show (a bug: also an
                             AssertionError)

:class:`SourceError` is handed over as a value in the stream of items to ingest
rather than raised, so one unreadable file never stops a folder or an archive.
"""

from __future__ import annotations


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters: a value from
    the input (a link, a date as written) can be any length, a message is one line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 2] + "…" + text[-1]


class KhabarError(Exception):
    """Base class of every error khabar raises deliberately."""


class ConfigError(KhabarError):
    """A setting is missing or invalid."""


class FilterError(KhabarError, ValueError):
    """A period or filter as typed cannot be read; the message says what is expected."""


class ModelError(KhabarError):
    """The embedding model cannot be built or loaded."""


class ModelMismatchError(ModelError):
    """The store's vectors were made by another model than the configured one."""


class IngestError(KhabarError):
    """One item could not be ingested; the rest of the batch goes on."""


class ParseError(IngestError):
    """The content is malformed, empty, binary or of an unsupported kind."""


class SourceError(IngestError):
    """A file, folder or archive member that cannot be read, with a one-line reason.

    Yielded among the items of a path (not raised); ``str()`` is ``"name: message"``.
    """

    def __init__(self, name: str, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the library said
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message

    def __reduce__(self) -> tuple[type[SourceError], tuple[str, str]]:
        return type(self), (self.name, self.message)


class FetchError(IngestError):
    """A URL could not be fetched (network, status, size, content type)."""


class BlockedURLError(FetchError):
    """The URL resolves to a private, loopback or link-local address."""


class StoreError(KhabarError):
    """The store is unusable: corrupt, locked or inconsistent."""


class CitationError(KhabarError, AssertionError):
    """An answer cites a source it does not show, or shows one it does not cite.

    khabar's own fault, never the user's: it is also an AssertionError, and the CLI
    reports it as an internal error.
    """
