"""docker-compose.yml describes the same stack as the embedded demo (Docker cannot run here)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mash.broker_bundle import MOUNTED_AT, write_bundle
from mash.kafka_acls import SERVICE_PRINCIPALS
from mash.kafka_security import HUB, OPERATOR, TRIAGE_APP, connector
from mash.settings import PROJECT_ROOT
from mash.topics import AGENCIES
from services.hub.app import STAGES

COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def pinned_kafka_version() -> str:
    pom = (PROJECT_ROOT / "infra" / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match
    return match.group(1)


def test_kafka_is_the_pinned_version_in_kraft_mode_configured_from_the_bundle(tmp_path: Path) -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"] == f"apache/kafka:{pinned_kafka_version()}"
    assert "kafka-broker:/etc/kafka/mash:ro" in kafka["volumes"]
    script = kafka["command"][0]
    assert f"-c {MOUNTED_AT}/server.properties" in script and f"@{MOUNTED_AT}/scram.args" in script
    assert script.endswith(f"kafka-server-start.sh {MOUNTED_AT}/server.properties")
    assert kafka["depends_on"]["kafka-bundle"] == {"condition": "service_completed_successfully"}
    write_bundle(tmp_path, host="kafka", port=9092)  # what `kafka-bundle` writes into the volume
    properties = (tmp_path / "broker" / "server.properties").read_text().splitlines()
    assert {"process.roles=broker,controller", "auto.create.topics.enable=false",
            "advertised.listeners=SASL_SSL://kafka:9092", "allow.everyone.if.no.acl.found=false"} <= set(properties)
    assert SERVICES["kafka-bundle"]["command"][0].startswith("mash kafka bundle /bundle --host kafka --port 9092")


PRINCIPAL_OF = {"provision": OPERATOR, "operator": OPERATOR, "hub": HUB, "triage-app": TRIAGE_APP,
                **{f"connector-{a.replace('_', '-')}": connector(a) for a in AGENCIES},
                "connector-education-answers": connector("education")}


def test_every_service_connects_secured_with_only_its_own_principals_folder_of_the_bundle() -> None:
    """Least privilege in compose: a service mounts one folder of the bundle, its own principal's, so it
    can neither read another's password nor connect as anyone else."""
    bundle = SERVICES["kafka-bundle"]
    for name, service in SERVICES.items():
        if not service.get("image", "").startswith("mash-bus:") or name in {"kafka-bundle", "migrate"}:
            continue
        env = service["environment"]
        assert env["MASH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert (env["MASH_KAFKA_CREDENTIALS_DIR"], env["MASH_KAFKA_SSL_CAFILE"]) == (
            "/run/mash-kafka", "/run/mash-kafka/ca.pem"), name
        assert "MASH_KAFKA_USERNAME" not in env and "MASH_KAFKA_PASSWORD" not in env, name
        assert service["volumes"] == [f"kafka-{PRINCIPAL_OF[name]}:/run/mash-kafka:ro"], name
    for principal in {*SERVICE_PRINCIPALS, OPERATOR}:
        assert f"kafka-{principal}:/bundle/{principal}" in bundle["volumes"], principal
        assert f"/bundle/{principal}" in bundle["command"][0], principal  # handed to the image's user
        assert f"kafka-{principal}" in COMPOSE["volumes"], principal
    assert "chown -R 1000:1000 /bundle/broker" in bundle["command"][0]  # apache/kafka's appuser
    assert "mash topics provision && mash kafka acls --apply" in SERVICES["provision"]["command"]


def test_every_pipeline_process_is_a_service_of_the_project_image() -> None:
    expected = {"migrate", "provision", "hub", "triage-app",
                *(f"connector-{a.replace('_', '-')}" for a in AGENCIES)}
    assert expected <= set(SERVICES)
    for name in expected:
        assert SERVICES[name]["image"].startswith("mash-bus:")
        assert (PROJECT_ROOT / SERVICES[name]["build"]["dockerfile"]).exists()
        command = SERVICES[name]["command"][0]  # a `mash` command, or a shell line of them
        assert command.removeprefix("mash ").split()[0] in {"db", "topics", "hub", "connector", "triage"}


def test_only_the_migration_step_has_the_schema_owner_and_the_processes_start_after_it() -> None:
    """Least privilege: the hub and the app connect as the runtime role, which cannot rewrite the audit."""
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert "MASH_DATABASE_OWNER_URL" in SERVICES["migrate"]["environment"]
    for name, service in SERVICES.items():
        if name != "migrate" and service.get("image", "").startswith("mash-bus:"):
            assert "MASH_DATABASE_OWNER_URL" not in (service.get("environment") or {}), name
            assert "://mash_runtime:" in service["environment"]["MASH_DATABASE_URL"], name
    for name in ("hub", "triage-app"):
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    init = SERVICES["postgres"]["volumes"][1].split(":")[0]
    assert (PROJECT_ROOT / init).exists() and "CREATE ROLE mash_runtime" in (PROJECT_ROOT / init).read_text()


def test_hub_uses_postgresql_and_the_compose_broker() -> None:
    env = SERVICES["hub"]["environment"]
    assert env["MASH_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["MASH_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert SERVICES["postgres"]["image"].startswith("postgres:")


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIAL", re.IGNORECASE)
FROM_THE_ENVIRONMENT = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")  # ${NAME:?why}: required, no default
URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]*)@")


def literal_secrets(compose: dict[str, Any]) -> list[str]:
    """Where the parsed file gives a secret a value of its own: a secret-named variable (or a URL's
    password) that is not wholly a required `${NAME:?...}` from the environment."""
    found = []
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, list):  # the `- NAME=value` spelling
            environment = dict(item.partition("=")[::2] for item in environment)
        for key, value in environment.items():
            text = "" if value is None else str(value)
            if key.endswith(("_DIR", "_FILE")):  # where a secret is kept, not the secret
                continue
            if SECRET_NAME.search(key) and not FROM_THE_ENVIRONMENT.fullmatch(text):
                found.append(f"{name}: {key}")
            for match in URL_PASSWORD.finditer(text):
                if not FROM_THE_ENVIRONMENT.fullmatch(match["password"]):
                    found.append(f"{name}: {key} (the URL's password)")
    return found


def test_no_secret_is_written_in_the_file() -> None:
    assert literal_secrets(COMPOSE) == []
    assert "${POSTGRES_PASSWORD:?" in SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]


@pytest.mark.parametrize(("swap", "named"), [
    (("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "hunter2"), "postgres: POSTGRES_PASSWORD"),
    (("${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD}", "${GRAFANA_ADMIN_PASSWORD:-admin}"),
     "grafana: GF_SECURITY_ADMIN_PASSWORD"),
    (("mash_runtime:${MASH_RUNTIME_PASSWORD:?set MASH_RUNTIME_PASSWORD}@", "mash_runtime:hunter2@"),
     "hub: MASH_DATABASE_URL (the URL's password)"),
])
def test_a_secret_written_into_the_file_is_found(swap: tuple[str, str], named: str) -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert swap[0] in text
    assert named in literal_secrets(yaml.safe_load(text.replace(swap[0], swap[1])))


def test_the_image_carries_every_folder_the_code_reads_at_run_time() -> None:
    dockerfile = (PROJECT_ROOT / "infra" / "docker" / "Dockerfile").read_text()
    for folder in ("mash", "connectors", "services", "schemas", "policies"):
        assert f"COPY {folder} ./{folder}" in dockerfile


def test_the_triage_app_is_published_on_loopback_with_its_key_from_the_environment() -> None:
    app = SERVICES["triage-app"]
    assert app["command"] == ["triage", "serve"]
    assert all(port.startswith("127.0.0.1:") for port in app["ports"])
    assert app["environment"]["MASH_TRIAGE_SECRET_KEY"].startswith("${MASH_TRIAGE_SECRET_KEY:?")
    assert app["environment"]["MASH_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_prometheus_and_grafana_are_provisioned_from_infra() -> None:
    prometheus, grafana = SERVICES["prometheus"], SERVICES["grafana"]
    assert "./infra/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    scrape = yaml.safe_load((PROJECT_ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    targets = {t.split(":")[0] for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {"hub", "triage-app", *(f"connector-{a.replace('_', '-')}" for a in AGENCIES)} == targets
    assert targets <= set(SERVICES)
    hub = next(job for job in scrape["scrape_configs"] if job["job_name"] == "mash-hub")
    ports = sorted(int(t.split(":")[1]) for c in hub["static_configs"] for t in c["targets"])
    base = int(SERVICES["hub"]["environment"]["MASH_METRICS_PORT"])
    assert ports == [base + n for n in range(len(STAGES))]  # one per stage process of the worker
