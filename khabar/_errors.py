"""The exception hierarchy of khabar.

Every error khabar raises on purpose derives from :class:`KhabarError`, so a front
end can catch one type, print ``str(exc)`` as a one-line message and exit.

    KhabarError
    ├── ConfigError          bad setting (arguments, environment, .env, khabar.toml)
    ├── ModelError           the embedding model cannot be built or loaded
    │   └── ModelMismatchError   the store was built with another model
    ├── IngestError          one item could not be ingested (reported, batch goes on)
    │   ├── ParseError       malformed or unsupported content
    │   └── FetchError       a URL could not be fetched
    │       └── BlockedURLError  the URL points at a private/loopback address
    └── StoreError           the store is unusable (corrupt, locked, inconsistent)
"""

from __future__ import annotations


class KhabarError(Exception):
    """Base class of every error khabar raises deliberately."""


class ConfigError(KhabarError):
    """A setting is missing or invalid."""


class ModelError(KhabarError):
    """The embedding model cannot be built or loaded."""


class ModelMismatchError(ModelError):
    """The store's vectors were made by another model than the configured one."""


class IngestError(KhabarError):
    """One item could not be ingested; the rest of the batch goes on."""


class ParseError(IngestError):
    """The content is malformed, empty, binary or of an unsupported kind."""


class FetchError(IngestError):
    """A URL could not be fetched (network, status, size, content type)."""


class BlockedURLError(FetchError):
    """The URL resolves to a private, loopback or link-local address."""


class StoreError(KhabarError):
    """The store is unusable: corrupt, locked or inconsistent."""
