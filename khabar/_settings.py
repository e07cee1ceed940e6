"""One settings object, read from the environment and an optional ``khabar.toml``.

Precedence: explicit keyword arguments > environment (``KHABAR_*``) > ``khabar.toml``
(in the working directory, or the file named by ``KHABAR_CONFIG``) > defaults.
The object is passed into every component; nothing reads the environment later.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from khabar._errors import ConfigError

DEFAULT_MODEL = "multilingual-e5-small"
_SECRET_FIELDS = frozenset({"telegram_token", "webhook_secret", "llm_api_key"})


@dataclass(frozen=True)
class Settings:
    """Every setting of khabar. Field ``x`` is read from ``KHABAR_X``."""

    home: Path = field(default_factory=lambda: Path.home() / ".cache" / "khabar")
    model: str = DEFAULT_MODEL
    # Second encoder fused with the model for cross-language search ("use" or "none").
    second_encoder: str = "use"
    index_type: Literal["auto", "flat", "hnsw"] = "auto"  # khabar.store.IndexType
    hnsw_threshold: int = 200_000  # passages per language above which "auto" picks HNSW
    batch_size: int = 16
    # Embed each passage's sentences too: questions usually match one sentence, and
    # answers reuse them (see docs/benchmarks.md). About doubles embedding at ingest.
    sentence_vectors: bool = True
    # Fetching URLs and feeds.
    allow_private_urls: bool = False
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10_000_000
    fetch_max_redirects: int = 5
    max_file_bytes: int = 50_000_000
    # Answers.
    top_k: int = 3  # passages shown with an answer
    llm: str | None = None  # a LangChain init_chat_model spec, e.g. "openai:gpt-4o-mini"
    llm_api_key: str | None = None
    # Telegram.
    telegram_token: str | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: frozenset[int] = frozenset()
    webhook_secret: str | None = None
    rate_limit_per_minute: int = 20

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        toml_path: Path | None = None,
        **overrides: Any,
    ) -> Settings:
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        path = toml_path or (Path(env["KHABAR_CONFIG"]) if env.get("KHABAR_CONFIG") else None)
        if path is None and Path("khabar.toml").is_file():
            path = Path("khabar.toml")
        if path is not None:
            try:
                raw.update(tomllib.loads(Path(path).read_text(encoding="utf-8")))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        for f in fields(cls):
            key = "KHABAR_" + f.name.upper()
            if key in env and env[key] != "":
                raw[f.name] = env[key]
        raw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**{name: _coerce(name, value) for name, value in raw.items()})

    def public_dict(self) -> dict[str, Any]:
        """The effective settings, secrets masked, for ``khabar config``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS and value:
                value = "***" + str(value)[-2:] if len(str(value)) > 8 else "***"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            out[f.name] = value
        return out

    def __repr__(self) -> str:  # never print secrets, even by accident
        inner = ", ".join(f"{k}={v!r}" for k, v in self.public_dict().items())
        return f"Settings({inner})"


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"1", "true", "yes", "on"}:
                return True
            if str(value).lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if kind == "frozenset[int]":
            if isinstance(value, str):
                value = [v for v in value.replace(";", ",").split(",") if v.strip()]
            return frozenset(int(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r} has an invalid value: {value!r}") from exc
    return value
