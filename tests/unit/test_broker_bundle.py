"""`mash kafka bundle`: what the compose stack's broker and services are given, made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from mash.broker_bundle import BundleExists, write_bundle
from mash.kafka_security import HUB


def test_a_bundle_is_made_once_so_the_broker_storage_and_the_services_keep_agreeing(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle, port=9092)
    password = (bundle / HUB / HUB).read_text()
    properties = (bundle / "broker" / "server.properties").read_text()
    with pytest.raises(BundleExists, match="remove the broker's volumes"):
        write_bundle(bundle, port=9092)
    assert (bundle / HUB / HUB).read_text() == password
    assert "advertised.listeners=SASL_SSL://kafka:9092" in properties
    assert "listeners=SASL_SSL://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093" in properties
    assert "controller.quorum.voters=1@kafka:9093" in properties
    assert "allow.everyone.if.no.acl.found=false" in properties
    assert "ssl.keystore.location=/etc/kafka/mash/tls/broker-keystore.pem" in properties
    assert password not in properties  # only the broker's own password is in its configuration
