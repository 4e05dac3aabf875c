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


@pytest.mark.parametrize("host", ["kafka\nallow.everyone.if.no.acl.found=true", "kafka:9092", "", "-kafka", "a b",
                                  "kafka\x00", "x" * 254])
def test_a_host_that_is_not_a_plain_name_is_refused_before_anything_is_written(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        write_bundle(tmp_path / "bundle", host=host)
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("host", ["kafka", "broker-1.mash.internal", "10.0.0.5"])
def test_a_plain_host_name_is_advertised_and_in_the_certificate(tmp_path: Path, host: str) -> None:
    from cryptography import x509

    write_bundle(tmp_path / "bundle", host=host)
    assert f"advertised.listeners=SASL_SSL://{host}:9092" in (tmp_path / "bundle/broker/server.properties").read_text()
    chain = (tmp_path / "bundle/broker/tls/broker-keystore.pem").read_bytes()
    cert = x509.load_pem_x509_certificates(chain[chain.index(b"-----BEGIN CERTIFICATE-----"):])[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in {*names.get_values_for_type(x509.DNSName), *map(str, names.get_values_for_type(x509.IPAddress))}
