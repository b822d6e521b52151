"""docker-compose.yml and the Dockerfile agree with the example apps and the demo.

No Docker engine runs here: these tests read the files and build each app
with the environment that compose gives it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from example_app import launcher, settings
from example_app.settings import DEFAULT_MAIL_SENT, DEFAULT_USER_CREATED, TOPIC_PARTITIONS
from flask_hyper.devbroker import KAFKA_VERSION

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = launcher.SERVICES
EXPECTED_TOPICS = {DEFAULT_USER_CREATED, DEFAULT_MAIL_SENT}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {name: str(value) for name, value in environment.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _create_app(service: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in settings.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # The container's /data does not exist here.
    monkeypatch.setenv(settings.DB_PATH_ENV, str(tmp_path / f"{service}.sqlite3"))

    module = __import__(f"example_app.{service}", fromlist=["create_app"])
    return module.create_app()


def test_compose_services_match_demo(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "topics", "smtp", *APP_SERVICES}


def test_compose_kafka_image_is_apache_kafka(compose: dict[str, Any]) -> None:
    image = compose["services"]["kafka"]["image"]
    assert image.split(":")[0] == "apache/kafka"
    # Same Kafka as the devbroker the demo and the tests run.
    assert image.split(":")[1] == KAFKA_VERSION


def test_compose_kafka_listener_matches_bootstrap(compose: dict[str, Any]) -> None:
    kafka = _environment(compose["services"]["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"]
    for name in ["topics", *APP_SERVICES]:
        bootstrap = _environment(compose["services"][name])[settings.BOOTSTRAP_ENV]
        assert f"//{bootstrap}" in advertised, f"{name} uses {bootstrap}, Kafka advertises {advertised}"


def test_compose_app_env_names_are_read(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        environment = _environment(compose["services"][name])
        assert environment["SERVICE"] == name
        unknown = set(environment) - set(settings.ENV_VARS) - {"SERVICE"}
        assert not unknown, f"{name} sets variables no app reads: {sorted(unknown)}"


def test_compose_apps_use_default_topic_names(compose: dict[str, Any]) -> None:
    # The demo and HYPER_TOPICS use the default names; an override here would split them.
    overrides = {settings.PREFIX_ENV, settings.TOPIC_USER_CREATED_ENV, settings.TOPIC_MAIL_SENT_ENV}
    for name in ["topics", *APP_SERVICES]:
        assert not overrides & set(_environment(compose["services"][name])), name


def test_compose_topics_service_creates_hyper_topics(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    topics = compose["services"]["topics"]
    command = _command(topics)
    assert command[-3:] == ["hyper", "topics", "create"]
    app_module = command[command.index("--app") + 1]
    service = re.fullmatch(r"example_app\.(\w+):create_app", app_module).group(1)

    app = _create_app(service, _environment(topics), monkeypatch, tmp_path)
    declared = app.config["HYPER_TOPICS"]
    assert set(declared) == EXPECTED_TOPICS
    for spec in declared.values():
        assert spec["partitions"] == TOPIC_PARTITIONS
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_apps_build_from_compose_env(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expected_receivers = {
        "users": [],
        "mailer": [DEFAULT_USER_CREATED],
        "notifier": sorted(EXPECTED_TOPICS),
    }
    for name in APP_SERVICES:
        app = _create_app(name, _environment(compose["services"][name]), monkeypatch, tmp_path)
        state = app.extensions["hyper"]
        assert state.settings.service_name == name
        assert state.settings.producer_config["bootstrap.servers"] == "kafka:9092"
        assert set(state.settings.topics) == EXPECTED_TOPICS
        assert state.service.receiver_topics() == expected_receivers[name]


def test_compose_mailer_reaches_smtp_service(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = compose["services"]
    smtp_command = _command(services["smtp"])
    smtp_port = smtp_command[smtp_command.index("--port") + 1]

    app = _create_app("mailer", _environment(services["mailer"]), monkeypatch, tmp_path)
    example = app.extensions["example"]
    assert example.smtp_host == "smtp"
    assert str(example.smtp_port) == smtp_port
    assert services["mailer"]["depends_on"]["smtp"]["condition"] == "service_healthy"


def test_compose_healthchecks_probe_readyz(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "/readyz" in test, name
    assert "healthcheck" in compose["services"]["kafka"]


def test_compose_apps_wait_for_kafka_and_topics(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends_on = compose["services"][name]["depends_on"]
        assert depends_on["kafka"]["condition"] == "service_healthy", name
        assert depends_on["topics"]["condition"] == "service_completed_successfully", name


def test_compose_apps_have_own_storage_and_ports(compose: dict[str, Any]) -> None:
    db_paths, host_ports = set(), set()
    for name in APP_SERVICES:
        service = compose["services"][name]
        db_path = _environment(service)[settings.DB_PATH_ENV]
        mounts = [volume.split(":")[1] for volume in service["volumes"]]
        assert any(db_path.startswith(mount + "/") for mount in mounts), f"{name}: {db_path} not on a volume"
        db_paths.add(db_path)
        for port in service["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            host_ports.add(port.split(":")[1])
    assert len(db_paths) == len(APP_SERVICES)
    assert len(host_ports) == len(APP_SERVICES)


def test_dockerfile_runs_selected_service(dockerfile: str) -> None:
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "'.[example]'" in dockerfile
    assert "python:flask_hyper.gunicorn_conf" in dockerfile
    assert "example_app.${SERVICE}:create_app()" in dockerfile
    healthcheck = re.search(r"^HEALTHCHECK .*?(?=^\S)", dockerfile, re.MULTILINE | re.DOTALL)
    assert healthcheck and "/readyz" in healthcheck.group(0)
