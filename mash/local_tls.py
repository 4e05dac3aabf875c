"""A throwaway certificate authority and broker certificate for the embedded Kafka broker.

Made at each start in the broker's own data directory (mode 0600 keys), never committed and never
reused: the embedded stack encrypts in transit the way production does, without anyone managing a
CA. Production uses the partnership's own PKI; clients then only need `MASH_KAFKA_SSL_CAFILE`.

Kafka reads PEM stores directly (`ssl.keystore.type=PEM`): the key must be unencrypted PKCS#8 or
encrypted with `ssl.key.password`; we write PKCS#8 without a password, readable only by its owner.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30  # a throwaway CA: long enough for a demo or a soak, short enough never to matter


@dataclass(frozen=True)
class TlsFiles:
    """Where the embedded broker's TLS material is: the CA clients trust, the broker's key and chain."""

    ca_cert: Path
    broker_keystore: Path  # PEM: the broker's PKCS#8 key, then its certificate and the CA's


def make_tls(directory: Path, common_name: str = "mash-embedded-broker", hosts: tuple[str, ...] = (),
             valid_days: int = VALID_DAYS) -> TlsFiles:
    """A new CA and a broker certificate for 127.0.0.1, localhost and `hosts`, written under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mash embedded CA (throwaway)")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName([_subject_name(h) for h in ("localhost", "127.0.0.1", *hosts)]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(directory / "ca.pem", directory / "broker-keystore.pem")
    files.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    _write_private(files.broker_keystore,
                   key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
                   + cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return files


def _subject_name(host: str) -> x509.GeneralName:
    """An address as an IP subject name (clients check an address against those), a name as a DNS one."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only, before any byte of the key is in it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
