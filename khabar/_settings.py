"""One settings object, validated by pydantic-settings.

``Settings(...)`` is the defaults plus the given arguments, nothing else: what tests,
benchmarks and library callers build. ``Settings.load(...)`` is what the ``khabar``
command uses; it reads, highest first:

    explicit keyword arguments
    > environment variables (``KHABAR_*``)
    > a ``.env`` file in the working directory (its ``KHABAR_*`` lines)
    > ``khabar.toml`` (the file named by ``KHABAR_CONFIG``, else one in the working directory)
    > defaults

Every value is checked once, here: a setting with fixed choices is a ``Literal``,
sizes and counts have bounds, an unknown key in ``khabar.toml`` or ``.env`` is an
error, and any bad value raises :class:`~khabar.ConfigError` with one line naming the
setting (the ``khabar`` command exits 2). Secrets are ``SecretStr``: ``repr``, ``str``
and :meth:`Settings.public_dict` never show them; their users call
``get_secret_value()``. The object is passed into every component; nothing reads
the environment later.

The data home (``KHABAR_HOME``) defaults to the platform's user data folder
(``platformdirs.user_data_dir("khabar")``, ``~/.local/share/khabar`` on Linux): an
index is data, not cache. Before, it was ``~/.cache/khabar``; when that folder exists
and the new one does not, it stays the home, so an existing index is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import platformdirs
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from khabar._errors import ConfigError
from khabar._redact import register_secrets

DEFAULT_MODEL = "multilingual-e5-small"
ENV_PREFIX = "KHABAR_"
CONFIG_VAR = "KHABAR_CONFIG"  # names the khabar.toml; not a setting itself
CONFIG_NAME = "khabar.toml"
DOTENV_NAME = ".env"
LEGACY_HOME = Path("~/.cache/khabar")  # the default home before the user data folder


def default_home() -> Path:
    """The platform's user data folder for khabar, unless only the legacy one exists.

    ``~/.cache/khabar`` was the default home before; where it is a folder and the new
    one does not exist yet, it is kept, so an existing index and model are found.
    """
    data = Path(platformdirs.user_data_dir("khabar", appauthor=False))
    legacy = LEGACY_HOME.expanduser()
    if not data.exists() and legacy.is_dir():
        return legacy
    return data


StoreKind = Literal["sqlite", "milvus-lite", "milvus"]
"""The store's backends (see ``Settings.store``)."""


def parse_store(value: str) -> tuple[StoreKind, str]:
    """``KHABAR_STORE`` as (backend, where): a folder, ``milvus-lite:///path/file.db``
    (the file) or ``milvus://host[:port]`` (host:port, 19530 by default)."""
    if "://" not in value:
        return "sqlite", str(Path(value).expanduser())
    scheme, rest = value.split("://", 1)
    if scheme == "milvus-lite":
        if not rest.startswith("/") or rest.endswith("/") or len(rest) < 2:
            raise ValueError("milvus-lite needs an absolute file path: "
                             "milvus-lite:///path/khabar.db")
        return "milvus-lite", rest
    if scheme == "milvus":
        host, _, port = rest.rstrip("/").partition(":")
        if not host or "/" in host or (port and not port.isdigit()):
            raise ValueError("a Milvus server is milvus://host:port, e.g. milvus://localhost:19530")
        return "milvus", f"{host}:{port or 19530}"
    raise ValueError(f"unknown store scheme {scheme!r}: use a folder, "
                     "milvus-lite:///path/khabar.db or milvus://host:19530")


class Settings(BaseSettings):
    """Every setting of khabar. Field ``x`` is read from ``KHABAR_X`` by :meth:`load`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,  # KHABAR_X= (empty) means "not set", as before
        extra="forbid",  # unknown keys in khabar.toml or .env are errors
        frozen=True,
        validate_default=True,
    )

    # Data folder: the built model (models/) and the store (store/). See default_home.
    home: Path = Field(default_factory=default_home)
    # The encoder: the built-in name, or a sentence-transformers folder.
    model: str = Field(DEFAULT_MODEL, min_length=1)
    # What runs the built-in model: onnx (onnxruntime on the ONNX export made at build:
    # no torch import, same vectors) or torch (sentence-transformers). Other models
    # always run on torch; without an export, so does this one.
    runtime: Literal["onnx", "torch"] = "onnx"
    # onnxruntime threads per encoder call; 0: one (calls run side by side instead).
    onnx_threads: NonNegativeInt = 0
    # Second encoder fused with the model for cross-language search.
    second_encoder: Literal["use", "none"] = "use"
    # Where the archive lives: a folder (SQLite + FAISS; default: <home>/store),
    # milvus-lite:///path/khabar.db (Milvus Lite, embedded, one file) or
    # milvus://host:19530 (a Milvus server shared by many processes and machines).
    # Milvus needs the milvus extra: pip install 'khabar[milvus]'.
    store: str | None = None
    # Vector index: flat (exact), hnsw, or auto (HNSW above hnsw_threshold).
    index_type: Literal["auto", "flat", "hnsw"] = "auto"
    # Passages per language from which "auto" picks HNSW: recall@10 0.99+ against exact
    # search there, and faster from ~20k (docs/benchmarks.md, *Approximate search*).
    hnsw_threshold: PositiveInt = 20_000
    batch_size: PositiveInt = 16  # passages per encoder batch
    # Embed each passage's sentences too: questions usually match one sentence, and
    # answers reuse them (see docs/benchmarks.md). About doubles embedding at ingest.
    sentence_vectors: bool = True
    # How a new store's e5 sentence vectors are made: "int8" embeds each sentence on
    # its own by e5 quantised to int8, one activation scale a token (passages and
    # questions stay fp32): about half the CPU of "each", every sentence at fp32, with
    # the same answers (nDCG@10 within 0.0014; docs/benchmarks.md). "late" pools them
    # from the passage's own run (no second e5 pass, ~0.01 nDCG@10 less on news). A
    # store keeps the way it was made until `khabar reindex`; the torch runtime makes
    # "each" vectors.
    sentence_method: Literal["each", "late", "int8"] = "int8"
    # Fetching URLs and feeds.
    allow_private_urls: bool = False
    fetch_timeout: PositiveFloat = 20.0  # seconds
    fetch_max_bytes: PositiveInt = 10_000_000
    fetch_max_redirects: NonNegativeInt = 5
    max_file_bytes: PositiveInt = 50_000_000  # a local file or upload larger is skipped
    # Each item of a batch (a file, archive member, page, feed) is parsed in a worker
    # process within this much CPU and memory (beyond the worker's own): past either, it
    # is reported as an error and the batch goes on (index/_worker.py). 0 CPU seconds:
    # parse in the ingesting process, unbounded.
    item_cpu_seconds: NonNegativeFloat = 60.0
    item_memory_mb: PositiveInt = 2048
    # Answers.
    top_k: PositiveInt = 3  # passages shown with an answer
    llm: str | None = None  # a LangChain init_chat_model spec, e.g. "openai:gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    # Telegram.
    telegram_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    # The bot's operators, by user id ("1,2;3" in the environment, a list in TOML): they
    # alone add to and remove from the index and run admin commands, by default.
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # Groups and channels the bot serves, by chat id (operators approve more with /allow
    # in their private chat with the bot); it leaves any other, saying why.
    allowed_chats: Annotated[frozenset[int], NoDecode] = frozenset()
    # Let a group's (or channel's) own administrators write too, in that chat only: /add,
    # documents, forwarded posts, /forget of what the chat added, /digest, and a
    # channel's own posts indexed. Off: operators only.
    chat_admins_write: bool = False
    webhook_secret: SecretStr | None = None
    rate_limit_per_minute: NonNegativeInt = 20  # questions per user; 0: no limit
    # Skip the updates that queued up while the bot was down, rather than answer an
    # hour-old backlog at start-up.
    telegram_drop_pending: bool = False

    SECRETS: ClassVar[frozenset[str]] = frozenset(
        {"telegram_token", "webhook_secret", "llm_api_key"})

    if not TYPE_CHECKING:  # type checkers keep the field-by-field signature
        def __init__(self, **values: Any) -> None:
            try:
                super().__init__(**values)
            except ValidationError as exc:
                raise ConfigError(_explain(exc)) from None
            except SettingsError as exc:
                raise ConfigError(f"bad setting: {exc}") from None
            # Whatever shows an error from now on hides these (khabar._redact).
            register_secrets(*(getattr(self, name) for name in self.SECRETS))

    # -- validation --------------------------------------------------------------
    @field_validator("home", mode="before")
    @classmethod
    def _home_default(cls, value: Any) -> Any:
        return default_home() if value is None or value == "" else value

    @field_validator("home")
    @classmethod
    def _home_expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("llm", "llm_api_key", "telegram_token", "webhook_secret", "store",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # TOML has no null: "" leaves these unset (khabar.toml.example does so).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("store", mode="before")
    @classmethod
    def _store_location(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str):
            parse_store(value.strip())  # a ValueError names what is wrong
            return value.strip()
        return value

    @field_validator("telegram_base_url", "telegram_file_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("admin_ids", "allowed_chats", mode="before")
    @classmethod
    def _split_ids(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            parts = value.replace(";", ",").replace(" ", ",").split(",")
            try:
                return frozenset(int(p) for p in parts if p.strip())
            except ValueError:
                what = "user ids" if info.field_name == "admin_ids" else "chat ids"
                raise ValueError(f"must be {what} separated by commas, e.g. 1,-1002;3"
                                 ) from None
        if isinstance(value, int) and not isinstance(value, bool):
            return frozenset({value})
        return value

    # -- sources -----------------------------------------------------------------
    @classmethod
    def load(cls, toml_path: Path | str | None = None, **overrides: Any) -> Settings:
        """The settings from every source (see the module docstring).

        ``toml_path`` replaces the ``khabar.toml`` lookup; overrides that are ``None``
        are left out, so ``load(home=args.home)`` keeps the configured home.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        with _reading(Path(toml_path) if toml_path is not None else None):
            return cls(**given)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        reading = _READING.get()
        if reading is None:  # Settings(...): defaults and arguments only
            return (init_settings,)
        dotenv = _DotEnv(settings_cls)
        path = config_file(reading.toml_path, env=env_settings, dotenv=dotenv)
        return (init_settings, env_settings, dotenv, _toml_source(settings_cls, path))

    # -- use ---------------------------------------------------------------------
    @property
    def store_dir(self) -> Path:
        """The SQLite store's folder (``KHABAR_STORE`` when it is a path)."""
        kind, where = self.store_location
        return Path(where) if kind == "sqlite" else self.home / "store"

    @property
    def store_location(self) -> tuple[StoreKind, str]:
        """Which backend holds the archive, and where: a folder, a file or host:port."""
        if self.store is None:
            return "sqlite", str(self.home / "store")
        return parse_store(self.store)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like the constructor's arguments."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**current, **changes})

    def public_dict(self) -> dict[str, Any]:
        """The effective settings, secrets masked, for ``khabar config``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                value = "***" + secret[-2:] if len(secret) > 8 else "***"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[name] = value
        return out


# -- sources ---------------------------------------------------------------------
class _Reading:
    def __init__(self, toml_path: Path | None) -> None:
        self.toml_path = toml_path


_READING: ContextVar[_Reading | None] = ContextVar("khabar_settings_reading", default=None)


@contextmanager
def _reading(toml_path: Path | None) -> Iterator[None]:
    token = _READING.set(_Reading(toml_path))
    try:
        yield
    finally:
        _READING.reset(token)


class _DotEnv(DotEnvSettingsSource):
    """``./.env``, its ``KHABAR_*`` lines only: the rest belong to other tools. An
    unknown ``KHABAR_X`` there is reported as the unknown setting ``x``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, env_file=DOTENV_NAME)

    def _load_env_vars(self) -> Any:
        prefix = ENV_PREFIX.lower()  # names are lower-cased (case-insensitive settings)
        found = {k: v for k, v in super()._load_env_vars().items() if k.startswith(prefix)}
        self.config_name = found.pop(CONFIG_VAR.lower(), None)
        return found

    def __call__(self) -> dict[str, Any]:
        prefix = ENV_PREFIX.lower()
        return {k.removeprefix(prefix): v for k, v in super().__call__().items()}


def config_file(toml_path: Path | None = None, *,
                env: PydanticBaseSettingsSource | None = None,
                dotenv: _DotEnv | None = None) -> Path | None:
    """The ``khabar.toml`` that :meth:`Settings.load` reads, if any: ``toml_path``, else
    the file named by ``KHABAR_CONFIG`` (environment, then ``.env``), else
    ``./khabar.toml`` when it exists."""
    if toml_path is not None:
        return toml_path
    if env is None:
        env = EnvSettingsSource(Settings)
    named = getattr(env, "env_vars", {}).get(CONFIG_VAR.lower())
    if not named:
        named = (dotenv or _DotEnv(Settings)).config_name
    if named:
        return Path(named).expanduser()
    return Path(CONFIG_NAME) if Path(CONFIG_NAME).is_file() else None


def _toml_source(settings_cls: type[BaseSettings], path: Path | None
                 ) -> TomlConfigSettingsSource:
    if path is not None and not path.is_file():
        raise ConfigError(f"cannot read config file {path}: no such file")
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


# -- errors ----------------------------------------------------------------------
def _explain(exc: ValidationError) -> str:
    """One line for every problem: which setting, its bad value, what is allowed."""
    errors = exc.errors(include_url=False)
    unknown = sorted({str(e["loc"][0]) for e in errors
                      if e["type"] == "extra_forbidden" and e["loc"]})
    parts = []
    if unknown:
        parts.append("unknown setting" + ("s" if len(unknown) > 1 else "") + ": "
                     + ", ".join(unknown) + " (`khabar config` lists them)")
    seen: set[str] = set()
    for e in errors:
        if e["type"] == "extra_forbidden":
            continue
        name = str(e["loc"][0]) if e["loc"] else "?"
        if name in seen:  # e.g. one message per member of a Union
            continue
        seen.add(name)
        msg = str(e["msg"]).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        value = "***" if name in Settings.SECRETS else _short(e.get("input"))
        parts.append(f"bad value {value} for setting {name} ({ENV_PREFIX}{name.upper()}): {msg}")
    return "; ".join(parts) or "invalid settings"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
