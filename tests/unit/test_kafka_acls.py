"""The ACL declaration grants each service only what its work needs (no broker: the broker's half is in
tests/integration/test_kafka_security.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.registry import connector_class
from mash.kafka_acls import ANSWERING_CONNECTORS, SERVICE_PRINCIPALS, Grant, grants, render
from mash.kafka_security import (
    HUB,
    TRIAGE_APP,
    KafkaCredentialsMissing,
    aiokafka_options,
    connector,
    kafka_python_options,
)
from mash.settings import Settings
from mash.topics import AGENCIES, CATALOGUE, DEADLETTER, RETURNS, inbound, requests_topic, topic_name

SETTINGS = Settings(topic_prefix="t.", app_id="app")


def held(principal: str, operation: str | None = None) -> set[tuple[str, str, str]]:
    return {(g.resource, g.name, g.operation) for g in grants(SETTINGS)
            if g.principal == principal and operation in (None, g.operation)}


@pytest.mark.parametrize("agency", AGENCIES)
def test_a_connector_writes_its_own_inbound_topic_and_the_dead_letters_and_reads_no_event(agency: str) -> None:
    writes = {name for _, name, _ in held(connector(agency), "WRITE")}
    expected = {topic_name(inbound(agency), SETTINGS), topic_name(DEADLETTER, SETTINGS)}
    if agency in ANSWERING_CONNECTORS:
        expected.add(topic_name(RETURNS, SETTINGS))
    assert writes == expected
    reads = {name for resource, name, _ in held(connector(agency), "READ") if resource == "TOPIC"}
    assert reads == ({topic_name(requests_topic(ANSWERING_CONNECTORS[agency]), SETTINGS)}
                     if agency in ANSWERING_CONNECTORS else set())


def test_only_the_hub_reads_the_inbound_and_hub_topics() -> None:
    readers: dict[str, set[str]] = {}
    for grant in grants(SETTINGS):
        if grant.resource == "TOPIC" and grant.operation == "READ":
            readers.setdefault(grant.name, set()).add(grant.principal)
    for spec in CATALOGUE:
        name = topic_name(spec.name, SETTINGS)
        if spec.name.startswith(("mash.inbound.", "mash.enriched", "mash.shared", "mash.decisions",
                                 "mash.match_answers")):
            assert readers.get(name) == {HUB}, name
        if spec.name.startswith(("mash.alerts", "mash.outcomes", "mash.audit", "mash.deadletter")):
            assert name not in readers, f"{name} is read by {readers.get(name)}: no service needs to"


def test_the_triage_app_reads_only_the_returns_it_shows() -> None:
    assert {name for resource, name, _ in held(TRIAGE_APP, "READ") if resource == "TOPIC"} == {
        topic_name(RETURNS, SETTINGS)}


def test_no_service_holds_a_wildcard_but_the_apps_request_topics() -> None:
    prefixed = [g for g in grants(SETTINGS) if g.pattern != "LITERAL"]
    assert {(g.principal, g.name) for g in prefixed} == {(TRIAGE_APP, "t.mash.requests.")}
    assert all(g.operation in ("READ", "WRITE", "CREATE") for g in grants(SETTINGS))


def test_the_declared_answering_connectors_are_the_ones_that_answer() -> None:
    answering = {agency: connector_class(agency).enquiry_agency for agency in AGENCIES}
    assert {a: e for a, e in answering.items() if e} == ANSWERING_CONNECTORS


def test_every_service_principal_is_printed_with_its_grants() -> None:
    text = render(SETTINGS)
    for principal in SERVICE_PRINCIPALS:
        assert f"User:{principal} " in text
    assert "allow.everyone.if.no.acl.found=false" in text
    assert Grant(HUB, "GROUP", "app.triage", "READ") in grants(SETTINGS)


def test_plaintext_only_when_set_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    plaintext = Settings(kafka_security_protocol="PLAINTEXT")
    assert kafka_python_options(plaintext, HUB) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_options(plaintext, HUB) == {"security_protocol": "PLAINTEXT"}
    monkeypatch.delenv("MASH_KAFKA_SECURITY_PROTOCOL", raising=False)  # the suite's shared broker sets it
    assert Settings().kafka_security_protocol == "SASL_SSL"


def test_a_secured_process_without_a_password_is_told_where_to_set_one(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_security_protocol="SASL_SSL")
    with pytest.raises(KafkaCredentialsMissing, match=r"MASH_KAFKA_PASSWORD.*mash kafka start"):
        kafka_python_options(settings, HUB)


def test_a_configured_principal_and_password_win_over_the_services_own(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("a CA certificate")
    settings = Settings(state_dir=tmp_path, kafka_security_protocol="SASL_SSL", kafka_username="hub-prod",
                        kafka_password=SecretStr("s3cret-from-the-vault"), kafka_ssl_cafile=tmp_path / "ca.pem")
    options = kafka_python_options(settings, HUB)
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("hub-prod", "s3cret-from-the-vault")
    assert options["ssl_cafile"] == str(tmp_path / "ca.pem") and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert "s3cret-from-the-vault" not in repr(settings)
