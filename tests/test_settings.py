"""khabar/_settings.py: where settings come from, what is refused, what is never shown.

Every test runs in an empty working directory with no ``KHABAR_*`` variables and a
HOME of its own, so the developer's environment, ``.env`` or ``khabar.toml`` never
leak in. The CLI tests run ``python -m khabar`` as scripts do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import platformdirs
import pytest
from khabar.bot._logging import JsonFormatter
from khabar.bot.cli import EXIT_OK, EXIT_USAGE
from pydantic import SecretStr

from khabar import ConfigError, Settings
from khabar._settings import default_home

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "khabar.toml.example"
TOKEN = "123456789:AAExampleSecretTokenValue"


@pytest.fixture(autouse=True)
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no KHABAR_* variables, a HOME of its own."""
    for name in list(os.environ):
        if name.upper().startswith("KHABAR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def khabar(*args: str, cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.upper().startswith("KHABAR_")}
    full.setdefault("KHABAR_HOME", str(cwd / "home"))
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "khabar", *args], capture_output=True,
                          text=True, env=full, cwd=cwd, timeout=120, check=False)


# -- sources and precedence -----------------------------------------------------------
def test_precedence_arguments_env_dotenv_toml_defaults(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(clean / "khabar.toml", "top_k = 1\nbatch_size = 1\nhnsw_threshold = 1\n"
                                 "fetch_max_redirects = 1\n")
    write(clean / ".env", "KHABAR_BATCH_SIZE=2\nKHABAR_HNSW_THRESHOLD=2\n"
                          "KHABAR_FETCH_MAX_REDIRECTS=2\n")
    monkeypatch.setenv("KHABAR_HNSW_THRESHOLD", "3")
    monkeypatch.setenv("KHABAR_FETCH_MAX_REDIRECTS", "3")
    s = Settings.load(fetch_max_redirects=4)
    assert s.top_k == 1  # khabar.toml over the default
    assert s.batch_size == 2  # .env over khabar.toml
    assert s.hnsw_threshold == 3  # environment over .env
    assert s.fetch_max_redirects == 4  # arguments over everything
    assert s.max_file_bytes == Settings().max_file_bytes  # the default


def test_none_arguments_and_empty_variables_mean_not_given(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(clean / "khabar.toml", f'home = "{clean / "from-toml"}"\ntop_k = 5\n')
    monkeypatch.setenv("KHABAR_TOP_K", "")
    s = Settings.load(home=None)  # `khabar` without --home
    assert s.home == clean / "from-toml" and s.top_k == 5


def test_the_constructor_reads_no_source(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(clean / "khabar.toml", "top_k = 1\n")
    write(clean / ".env", "KHABAR_BATCH_SIZE=2\n")
    monkeypatch.setenv("KHABAR_INDEX_TYPE", "flat")
    s = Settings(model="x")
    assert (s.model, s.top_k, s.batch_size, s.index_type) == ("x", 3, 16, "auto")


def test_khabar_config_names_the_file(clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(clean / "khabar.toml", "top_k = 1\n")
    other = write(clean.parent / "other.toml", "top_k = 2\n")
    third = write(clean.parent / "third.toml", "top_k = 3\n")
    write(clean / ".env", f"KHABAR_CONFIG={third}\n")
    assert Settings.load().top_k == 3  # named in .env, over ./khabar.toml
    monkeypatch.setenv("KHABAR_CONFIG", str(other))
    assert Settings.load().top_k == 2  # the environment over .env
    assert Settings.load(toml_path=clean / "khabar.toml").top_k == 1  # the argument wins
    monkeypatch.setenv("KHABAR_CONFIG", str(clean / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        Settings.load()


def test_dotenv_lines_of_other_tools_are_left_alone(clean: Path) -> None:
    write(clean / ".env", "OPENAI_API_KEY=sk-other\nexport KHABAR_TOP_K=7\n# a comment\n")
    assert Settings.load().top_k == 7


def test_unknown_keys_are_errors_in_files_not_in_the_environment(
        clean: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHABAR_SOMETHING_ELSE", "1")  # e.g. KHABAR_TEST_HOME: not ours
    assert Settings.load().top_k == 3
    write(clean / "khabar.toml", "top_k = 2\ntopk = 3\n[telegram]\ntoken = 'x'\n")
    with pytest.raises(ConfigError, match="unknown settings: telegram, topk"):
        Settings.load()
    (clean / "khabar.toml").unlink()
    write(clean / ".env", "KHABAR_TOPK=3\n")
    with pytest.raises(ConfigError, match="unknown setting: topk"):
        Settings.load()
    with pytest.raises(ConfigError, match="unknown setting: colour"):
        Settings(colour="red")  # type: ignore[call-arg]


def test_a_broken_toml_file_is_a_config_error(clean: Path) -> None:
    write(clean / "khabar.toml", "top_k = \n")
    with pytest.raises(ConfigError, match=r"cannot read config file khabar\.toml"):
        Settings.load()


# -- types and refusals ---------------------------------------------------------------
def test_values_are_parsed_from_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHABAR_ADMIN_IDS", "1,2;3")
    monkeypatch.setenv("KHABAR_SENTENCE_VECTORS", "no")
    monkeypatch.setenv("KHABAR_FETCH_TIMEOUT", "2.5")
    monkeypatch.setenv("KHABAR_HOME", "~/data")
    s = Settings.load()
    assert s.admin_ids == frozenset({1, 2, 3})
    assert s.sentence_vectors is False and s.fetch_timeout == 2.5
    assert s.home == Path.home() / "data"
    assert Settings(admin_ids=[4, 5]).admin_ids == frozenset({4, 5})  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "value", "says"), [
    ("index_type", "hsnw", "'auto', 'flat' or 'hnsw'"),
    ("second_encoder", "USE", "'use' or 'none'"),
    ("top_k", "0", "greater than 0"),
    ("batch_size", "-4", "greater than 0"),
    ("fetch_timeout", "0", "greater than 0"),
    ("rate_limit_per_minute", "-1", "greater than or equal to 0"),
    ("top_k", "many", "valid integer"),
    ("sentence_vectors", "maybe", "valid boolean"),
    ("admin_ids", "1,x", "user ids"),
    ("telegram_base_url", "api.telegram.org/bot", "http"),
])
def test_a_bad_value_names_the_setting_and_what_is_allowed(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str) -> None:
    monkeypatch.setenv(f"KHABAR_{name.upper()}", value)
    with pytest.raises(ConfigError) as err:
        Settings.load()
    message = str(err.value)
    assert "\n" not in message
    assert f"setting {name} (KHABAR_{name.upper()})" in message
    assert repr(value) in message and says in message


def test_settings_are_frozen_and_with_validates() -> None:
    s = Settings(top_k=4)
    with pytest.raises(Exception, match="frozen"):
        s.top_k = 5  # type: ignore[misc]
    assert s.with_(batch_size=2).top_k == 4
    with pytest.raises(ConfigError, match="index_type"):
        s.with_(index_type="fast")


def test_a_bad_setting_is_one_line_and_exit_2_through_the_cli(clean: Path) -> None:
    r = khabar("stats", cwd=clean, env={"KHABAR_INDEX_TYPE": "hsnw"})
    assert r.returncode == EXIT_USAGE, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("khabar: error:")
    for word in ("index_type", "KHABAR_INDEX_TYPE", "'hsnw'", "'auto'", "'flat'", "'hnsw'"):
        assert word in lines[0]
    assert r.stdout == "" and not (clean / "home").exists()  # refused before opening

    r = khabar("stats", cwd=clean, env={"KHABAR_STORE": "redis://cache:6379"})
    assert r.returncode == EXIT_USAGE and len(r.stderr.strip().splitlines()) == 1
    for word in ("KHABAR_STORE", "'redis'", "milvus-lite:///path/khabar.db",
                 "milvus://host:19530"):
        assert word in r.stderr

    r = khabar("config", cwd=clean, env={"KHABAR_TOP_K": "many"})
    assert r.returncode == EXIT_USAGE and "top_k" in r.stderr
    write(clean / "khabar.toml", "top_kk = 3\n")
    r = khabar("config", cwd=clean)
    assert r.returncode == EXIT_USAGE and "top_kk" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# -- secrets ----------------------------------------------------------------------------
def test_secrets_never_show_in_repr_str_or_public_dict() -> None:
    s = Settings(telegram_token=TOKEN, llm_api_key="sk-verysecretkey",  # type: ignore[arg-type]
                 webhook_secret="hook-secret-1")  # type: ignore[arg-type]
    assert isinstance(s.telegram_token, SecretStr)
    assert s.telegram_token.get_secret_value() == TOKEN
    shown = repr(s) + str(s) + json.dumps(s.public_dict()) + s.model_dump_json()
    for secret in (TOKEN, TOKEN.split(":")[1], "verysecret", "hook-secret"):
        assert secret not in shown
    assert s.public_dict()["telegram_token"] == "***ue"
    assert s.public_dict()["webhook_secret"] == "***-1"
    assert Settings(telegram_token="").telegram_token is None  # type: ignore[arg-type]


def test_a_bad_secret_is_not_echoed_in_the_error(clean: Path) -> None:
    write(clean / "khabar.toml", "telegram_token = 123456789012345\n")
    with pytest.raises(ConfigError, match="telegram_token") as err:
        Settings.load()
    assert "123456789012345" not in str(err.value)


def test_log_redaction_takes_the_secrets_as_the_settings_hold_them() -> None:
    s = Settings(telegram_token=TOKEN)  # type: ignore[arg-type]
    formatter = JsonFormatter([s.telegram_token, s.webhook_secret])
    assert formatter.redact(f"GET /bot{TOKEN}/getMe") == "GET /bot<redacted>/getMe"


def test_config_command_masks_secrets(clean: Path) -> None:
    env = {"KHABAR_LLM_API_KEY": "sk-verysecretkey"}
    write(clean / ".env", f"KHABAR_TELEGRAM_TOKEN={TOKEN}\n")
    r = khabar("config", cwd=clean, env=env)
    assert r.returncode == EXIT_OK, r.stderr
    assert TOKEN not in r.stdout and "SecretToken" not in r.stdout
    assert "verysecret" not in r.stdout
    assert "telegram_token" in r.stdout and "***" in r.stdout
    assert ".env" in r.stdout.splitlines()[0]
    r = khabar("config", "--json", cwd=clean, env={**env, "KHABAR_HOME": str(clean / "h")})
    data = json.loads(r.stdout)
    assert data["telegram_token"].startswith("***") and TOKEN not in r.stdout
    assert data["llm_api_key"].startswith("***")
    assert data["home"] == str(clean / "h")


# -- the data home ----------------------------------------------------------------------
def test_the_home_is_the_user_data_folder_unless_only_the_legacy_one_exists() -> None:
    data = Path(platformdirs.user_data_dir("khabar", appauthor=False))
    legacy = Path.home() / ".cache" / "khabar"
    assert data.is_relative_to(Path.home())  # the fixture's HOME, not the user's
    assert default_home() == data == Settings().home  # a new user
    legacy.mkdir(parents=True)
    assert default_home() == legacy == Settings().home  # an existing user keeps the index
    data.mkdir(parents=True)
    assert default_home() == data  # both: the new one
    assert Settings(home="").home == data  # "" (khabar.toml.example): the default


# -- khabar.toml.example ----------------------------------------------------------------
def test_the_store_is_a_folder_a_milvus_lite_file_or_a_milvus_server() -> None:
    home = Path("/data/khabar")
    assert Settings(home=home).store_location == ("sqlite", str(home / "store"))
    assert Settings(home=home, store="/srv/archive").store_dir == Path("/srv/archive")
    assert Settings(store="milvus-lite:///srv/k.db").store_location == ("milvus-lite",
                                                                      "/srv/k.db")
    assert Settings(store="milvus://db").store_location == ("milvus", "db:19530")
    assert Settings(store="milvus://db:9091").store_location == ("milvus", "db:9091")
    for bad in ("milvus-lite://k.db", "milvus://", "milvus://db:port", "http://db:19530"):
        with pytest.raises(ConfigError, match="store"):
            Settings(store=bad)


def test_the_example_lists_every_setting_with_its_default(clean: Path) -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert set(example) == set(Settings.model_fields)
    assert list(example) == list(Settings.model_fields)  # in the same order
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), f"no comment above: {line}"
    assert Settings.load(toml_path=EXAMPLE) == Settings()
