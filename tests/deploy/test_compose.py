"""deploy/docker-compose.yml and deploy/Dockerfile, checked without a Docker engine.

`docker compose config` needs the compose plugin, absent here: these tests read the YAML and
check what compose would be trusted with: healthchecks, restarts, pinned images, documented
variables, no secret literals, dependency conditions, limits, logging, volumes, the ports
Prometheus scrapes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_files import DEPLOY, ROOT, load_yaml

SERVICES = {"sentinel": 9101, "producer": 9102, "consumer": 9103, "gatekeeper": 9104}
SIMULATOR_PORT = 9105
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])[^}]*)?\}")
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|WEBHOOK|API_KEY|(^|_)AUTH$")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(DEPLOY / "docker-compose.yml")
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def long_running() -> dict[str, dict[str, Any]]:
    """Every service but one-off tools (profile "tools")."""
    return {n: s for n, s in services().items() if "tools" not in s.get("profiles", [])}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {str(k): str(v) for k, v in env.items()}


def test_the_compose_file_has_every_service_and_the_simulator_only_behind_its_profile() -> None:
    names = set(services())
    assert {*SERVICES, "redis", "clickhouse", "prometheus", "grafana", "simulator"} <= names
    assert services()["simulator"]["profiles"] == ["sim"]
    started_by_default = {n for n, s in services().items() if not s.get("profiles")}
    assert "simulator" not in started_by_default and "cli" not in started_by_default


@pytest.mark.parametrize("name", sorted(long_running()))
def test_every_long_running_service_has_a_healthcheck_a_restart_policy_limits_and_log_rotation(
    name: str,
) -> None:
    service = long_running()[name]
    health = service.get("healthcheck", {})
    assert health.get("test") and not health.get("disable"), f"{name}: no healthcheck"
    assert health["test"][0] in {"CMD", "CMD-SHELL"}
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
    limits = service["deploy"]["resources"]["limits"]
    assert limits.get("memory") and limits.get("cpus"), f"{name}: no resource limits"
    logging = service["logging"]
    assert logging["options"]["max-size"] and logging["options"]["max-file"], name


@pytest.mark.parametrize("name", sorted(services()))
def test_every_image_is_pinned_to_a_version(name: str) -> None:
    service = services()[name]
    image = str(service["image"])
    if "build" in service:  # built here from the checked-out sources
        assert image.startswith("tradealgo:"), image
        return
    repository, _, tag = image.rpartition(":")
    assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
    assert re.match(r"^v?\d+(\.\d+)+", tag), f"{name}: tag {tag!r} has no version"


def test_every_variable_the_compose_file_uses_is_documented_in_env_example() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = {match.group(1) for match in INTERPOLATION.finditer(text)}
    assert "DEPLOY_REDIS_PASSWORD_GATEKEEPER" in used  # the pattern finds them
    documented = set(
        re.findall(r"^# ([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert sorted(used - documented) == []


def test_no_interpolation_hides_in_a_bare_dollar_form() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    bare = re.findall(r"\$(?![{$])[A-Za-z_]", text)
    assert bare == [], "write ${VAR}: the tests (and readers) look for that form"


def test_passwords_are_required_variables_never_defaults_or_literals() -> None:
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                match = INTERPOLATION.fullmatch(value)
                assert match, f"{name}: {key} is a literal"
                required = match.group(2) == ":?"
                optional_channel = key in {
                    "TELEGRAM_BOT_TOKEN",
                    "TELEGRAM_CHAT_ID",
                    "SLACK_WEBHOOK_URL",
                }
                assert required or optional_channel, f"{name}: {key} may silently be empty"
            for url in re.findall(r"\w+://[^\s\"']+", value):
                userinfo = url.split("://", 1)[1].split("@", 1)
                if len(userinfo) == 2:
                    password = userinfo[0].split(":", 1)[1]
                    assert INTERPOLATION.fullmatch(password), f"{name}: {key} embeds a password"


def test_the_gatekeeper_mode_is_never_set_here_so_logging_only_is_the_default() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    assert "GATEKEEPER_MODE" not in text.replace("GATEKEEPER_MODE=live", "")
    assert "LIVE_CONFIRM:" not in text
    from services.gatekeeper.settings import GatekeeperSettings

    assert GatekeeperSettings.model_fields["mode"].default == "logging"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_reaches_redis_and_clickhouse_as_its_own_user(name: str) -> None:
    service = services()[name]
    env = environment(service)
    prefix = name.upper()
    assert env[f"{prefix}_REDIS_URL"].startswith(
        f"redis://{name}:${{DEPLOY_REDIS_PASSWORD_{prefix}"
    )
    assert env[f"{prefix}_REDIS_URL"].endswith("@redis:6379/0")
    assert env[f"{prefix}_CLICKHOUSE_HOST"] == "clickhouse"
    assert env[f"{prefix}_CLICKHOUSE_USER"] == name
    assert env[f"{prefix}_CLICKHOUSE_DATABASE"] == "tradealgo"  # users.xml grants this one
    assert f"DEPLOY_CLICKHOUSE_PASSWORD_{prefix}" in env[f"{prefix}_CLICKHOUSE_PASSWORD"]
    assert service["command"] == ["python", "-m", f"services.{name}"]
    assert service["env_file"] == ["../.env"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_waits_for_healthy_storage(name: str) -> None:
    depends = services()[name]["depends_on"]
    for needed in ("redis", "clickhouse"):
        assert depends[needed]["condition"] == "service_healthy", f"{name} -> {needed}"


@pytest.mark.parametrize(
    ("name", "port"), [*sorted(SERVICES.items()), ("simulator", SIMULATOR_PORT)]
)
def test_metrics_port_healthcheck_and_prometheus_target_agree(name: str, port: int) -> None:
    service = services()[name]
    env = environment(service)
    prefix = "SIM" if name == "simulator" else name.upper()
    assert env[f"{prefix}_METRICS_PORT"] == str(port)
    assert env[f"{prefix}_METRICS_HOST"] == "0.0.0.0"  # reachable by Prometheus
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"])
    scrape = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    target = f'"{name}:{port}"' if name in SERVICES else f"port: {port}"
    assert target in scrape


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_module_can_be_started_with_python_dash_m(name: str) -> None:
    if not (ROOT / "services" / name / "__main__.py").exists():
        pytest.skip(f"services/{name}/__main__.py is not written yet")
    assert (ROOT / "services" / name / "__init__.py").exists()


def test_stateful_services_keep_their_data_in_named_volumes() -> None:
    volumes = set(compose()["volumes"])
    expected = {
        "redis": "redis-data:/data",
        "clickhouse": "clickhouse-data:/var/lib/clickhouse",
        "prometheus": "prometheus-data:/prometheus",
        "grafana": "grafana-data:/var/lib/grafana",
        "gatekeeper": "spool:/app/var/spool",
    }
    for name, mount in expected.items():
        assert mount in services()[name]["volumes"], name
        assert mount.split(":", 1)[0] in volumes


def test_every_file_the_compose_file_mounts_exists() -> None:
    for name, service in services().items():
        for mount in service.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
    for name, service in services().items():
        for env_file in service.get("env_file", []):
            assert env_file == "../.env", f"{name} reads {env_file}"


def test_only_grafana_and_prometheus_are_published_and_on_a_configurable_address() -> None:
    published = {name: s["ports"] for name, s in services().items() if s.get("ports")}
    assert set(published) == {"grafana", "prometheus"}
    for ports in published.values():
        assert all(str(p).startswith("${DEPLOY_BIND_ADDRESS:-127.0.0.1}:") for p in ports)


def test_the_redis_and_clickhouse_users_match_the_service_users() -> None:
    redis_env = environment(services()["redis"])
    clickhouse_env = environment(services()["clickhouse"])
    start = (DEPLOY / "redis" / "start.sh").read_text()
    users_xml = (DEPLOY / "clickhouse" / "users.xml").read_text()
    for user in [*SERVICES, "ops"]:
        assert f"REDIS_PASSWORD_{user.upper()}" in redis_env
        assert f"CLICKHOUSE_PASSWORD_{user.upper()}" in clickhouse_env
        assert user in re.search(r'users="([^"]+)"', start).group(1).split()  # type: ignore[union-attr]
        assert f'from_env="CLICKHOUSE_PASSWORD_{user.upper()}"' in users_xml


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def test_the_image_is_python_3_12_slim_runs_as_a_non_root_user_and_installs_from_the_lock() -> None:
    text = dockerfile()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert bases and all(base.startswith("python:3.12-slim") for base in bases)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "pip install -c requirements.lock ." in text
    assert (ROOT / "requirements.lock").is_file()


def test_no_secret_can_enter_the_image() -> None:
    text = dockerfile()
    assert not re.search(r"^(ENV|ARG)\s+\S*(PASSWORD|SECRET|TOKEN|API_KEY)", text, re.M)
    copied = re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M)
    assert copied and not any(".env" in line or line.strip().startswith(". ") for line in copied)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "the build context is an allow-list"
    assert not any(".env" in rule for rule in rules if rule.startswith("!"))


def test_the_image_copies_every_package_the_project_installs() -> None:
    copied = set(re.findall(r"^COPY\s+(\w+)\s", dockerfile(), re.M))
    assert copied >= {"shared", "services"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["shared*", "services*"]' in pyproject


def test_deploy_paths_are_relative_to_the_compose_file() -> None:
    build = services()["gatekeeper"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile")
    assert Path(DEPLOY / build["context"]).resolve() == ROOT
