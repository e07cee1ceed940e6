"""The deployment files for ``khabar serve``: the systemd unit (docs/deploy/khabar.service),
the Dockerfile and docker-compose.yml (khabar on Milvus standalone). None can run here (no
systemd as PID 1, no Docker daemon), so they are read as systemd, Docker and Compose read
them, and checked against the CLI and the settings they start.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from khabar.bot.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "docs" / "deploy" / "khabar.service"
DOCKERFILE = REPO / "Dockerfile"


def subcommands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def assert_runs_serve(argv: list[str]) -> None:
    """``… khabar serve [flags]``: the CLI, and a subcommand it has, that parses."""
    assert Path(argv[0]).name == "khabar", argv
    assert argv[1] == "serve" and argv[1] in subcommands(), argv
    build_parser().parse_args(argv[1:])  # exits (SystemExit) on a flag it does not know


# -- the systemd unit ----------------------------------------------------------------------
def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of (key, value) in order: systemd allows a key more than once."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"a setting outside any section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, (key, found)
    return found[0]


def test_the_unit_runs_khabar_serve_as_its_own_user_with_state_and_secrets() -> None:
    unit = read_unit(UNIT)
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert one(service, "User") not in ("", "root", "0")
    assert one(service, "EnvironmentFile").startswith("/etc/")  # the token, not in the unit
    assert not any("TOKEN" in v for v in values(service, "Environment"))
    assert one(service, "Restart") == "on-failure"
    assert one(service, "StateDirectory") == "khabar"
    # KHABAR_HOME is that state directory (%S: /var/lib for a system service).
    assert "KHABAR_HOME=%S/khabar" in values(service, "Environment")
    assert_runs_serve(shlex.split(one(service, "ExecStart")))
    assert one(unit["Install"], "WantedBy") == "multi-user.target"


def test_the_unit_is_hardened() -> None:
    service = read_unit(UNIT)["Service"]
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"  # writes only its StateDirectory
    assert one(service, "ProtectHome") == "yes"
    assert one(service, "PrivateTmp") == "yes"
    assert one(service, "CapabilityBoundingSet") == ""


def unit_for_this_machine(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's khabar, which exists."""
    khabar = shutil.which("khabar") or str(Path(sys.executable).with_name("khabar"))
    if not Path(khabar).exists():
        pytest.skip("no installed khabar script")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/khabar/bin/khabar", khabar)
    path = tmp_path / "khabar.service"
    path.write_text(text, encoding="utf-8")
    return path


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed")
    return exe


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    r = subprocess.run([systemd_analyze(), "verify", str(unit_for_this_machine(tmp_path))],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_systemd_rates_the_unit_exposure_low(tmp_path: Path) -> None:
    path = unit_for_this_machine(tmp_path)
    r = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager",
                        str(path)], capture_output=True, text=True, check=False)
    if "--offline" in r.stderr or "unrecognized option" in r.stderr:
        pytest.skip("systemd-analyze security has no --offline (systemd < 250)")
    level = re.search(r"Overall exposure level for khabar\.service: ([0-9.]+)", r.stdout)
    assert level, r.stdout[-2000:] + r.stderr
    assert float(level.group(1)) <= 2.0, r.stdout  # from 0 to 10; up to 2 is "OK"


# -- the Dockerfile -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE), cache_content=True)


def instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def test_the_image_is_python_3_11_slim(dockerfile: DockerfileParser) -> None:
    assert next(i["instruction"] for i in dockerfile.structure
            if i["instruction"] != "COMMENT") == "FROM"
    assert dockerfile.baseimage == "python:3.11-slim"
    assert len(instructions(dockerfile, "FROM")) == 1


def test_torch_is_the_cpu_build_installed_before_khabar(dockerfile: DockerfileParser) -> None:
    runs = instructions(dockerfile, "RUN")
    torch = next(i for i, r in enumerate(runs) if '"torch==' in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    khabar = next(i for i, r in enumerate(runs) if 'pip install ".[telegram,milvus]"' in r)
    assert torch < khabar


def test_it_runs_khabar_serve_as_a_user_on_a_data_volume(dockerfile: DockerfileParser) -> None:
    users = instructions(dockerfile, "USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    home = dockerfile.envs["KHABAR_HOME"]
    volumes = [v for value in instructions(dockerfile, "VOLUME") for v in json.loads(value)]
    assert home in volumes
    structure = [i["instruction"] for i in dockerfile.structure]
    # USER comes after every RUN (installs as root, runs as the user) and before CMD.
    last_run = max(i for i, name in enumerate(structure) if name == "RUN")
    last_user = max(i for i, name in enumerate(structure) if name == "USER")
    assert last_run < last_user < structure.index("CMD")
    cmd = json.loads(dockerfile.cmd)  # the exec form: signals reach khabar, not a shell
    assert cmd == ["khabar", "serve"]
    assert_runs_serve(cmd)


def test_the_build_context_leaves_out_environments_and_data() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "khabar-home", "build"} <= set(ignored)


# -- docker-compose.yml: khabar on Milvus standalone ---------------------------------------
COMPOSE = REPO / "docker-compose.yml"


def _compose() -> dict:
    import yaml  # Compose's YAML, anchors and merge keys (<<) resolved as Compose does

    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_runs_the_bot_and_an_ingest_worker_on_one_milvus() -> None:
    from khabar import Settings

    services = _compose()["services"]
    assert {"etcd", "minio", "milvus", "bot", "ingest"} <= set(services)
    milvus = services["milvus"]
    assert milvus["image"].startswith("milvusdb/milvus:v2.")
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert {"etcd", "minio"} <= set(milvus["depends_on"])
    assert "healthcheck" in milvus and "19530:19530" in milvus["ports"][0]
    for name in ("bot", "ingest"):
        svc = services[name]
        assert svc["build"] == "." and svc["depends_on"]["milvus"]["condition"] \
            == "service_healthy"
        env = svc["environment"]
        # The same archive for both, a setting khabar accepts: the server by its name.
        settings = Settings(home=Path(env["KHABAR_HOME"]), store=env["KHABAR_STORE"])
        assert settings.store_location == ("milvus", "milvus:19530")
        assert "khabar-data:" + env["KHABAR_HOME"] in svc["volumes"]
    assert_runs_serve(services["bot"]["command"])
    assert "${KHABAR_TELEGRAM_TOKEN:?" in services["bot"]["environment"]["KHABAR_TELEGRAM_TOKEN"]
    script = services["ingest"]["command"][-1]
    step = script.split(";")[1].strip().removeprefix("do ")
    argv = shlex.split(step.replace("$$KHABAR_FEEDS", "https://a.test/f"))
    assert argv[:2] == ["khabar", "ingest"] and argv[1] in subcommands()
    build_parser().parse_args(argv[1:])
    volumes = set(_compose()["volumes"])
    for svc in services.values():
        for mount in svc.get("volumes", []):
            assert mount.split(":")[0] in volumes, mount


def test_the_image_compose_builds_has_the_milvus_client(dockerfile: DockerfileParser) -> None:
    runs = instructions(dockerfile, "RUN")
    assert any('".[telegram,milvus]"' in r for r in runs)
