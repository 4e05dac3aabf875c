"""Attacks on the bus's Kafka security that need no broker: secrets in reprs, logs and error messages,
hostile principal names and passwords for `mash kafka credentials`, and the errors a misconfigured
process gets (the broker's half: tests/integration/test_kafka_security_attacked.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mash import cli
from mash.kafka_acls import REQUESTS_PREFIX, grants
from mash.kafka_security import (
    HUB,
    TRIAGE_APP,
    KafkaCredentialsMissing,
    aiokafka_options,
    kafka_python_options,
    write_password,
)
from mash.scram_credentials import CredentialError, set_password
from mash.settings import Settings, get_settings
from mash.topics import CATALOGUE, topic_name

SECRET = "s3cr3t-MARKER-never-shown-0123456789"
NOWHERE = "127.0.0.1:1"  # nothing listens: a test that got as far as connecting fails fast


def secured(tmp_path: Path, **extra: object) -> Settings:
    return Settings(state_dir=tmp_path, kafka_security_protocol="SASL_SSL", bootstrap_servers=NOWHERE,
                    **extra)  # type: ignore[arg-type]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The CLI's settings come from the environment: a secured bus at an address nobody listens on."""
    for name, value in {"MASH_STATE_DIR": str(tmp_path), "MASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "MASH_BOOTSTRAP_SERVERS": NOWHERE}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_password_is_in_no_repr_str_or_dump_of_the_settings(tmp_path: Path) -> None:
    settings = secured(tmp_path, kafka_password=SecretStr(SECRET))
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert SECRET not in text


@pytest.mark.parametrize("principal", ["../../etc/passwd", "hub\n", " hub", "hub\x00", "\uff48\uff55\uff42", "",
                                       "h" * 10_000, "operator", "broker", "User:hub", "connector-*",
                                       "connector-../hub"])
def test_credentials_refuse_a_hostile_principal_before_connecting(tmp_path: Path, principal: str) -> None:
    with pytest.raises(CredentialError, match="not a service principal") as refused:
        set_password(NOWHERE, secured(tmp_path), principal, SECRET)
    assert "\n" not in str(refused.value)  # the name is quoted (repr): it cannot forge a line of output
    assert SECRET not in str(refused.value)
    assert not (tmp_path / "kafka").exists()  # nothing written anywhere


@pytest.mark.parametrize("password", ["short", " " + "x" * 30, "x" * 30 + " ", "x" * 30 + "\r", "\t" + "x" * 30,
                                      "x" * 23])
def test_credentials_refuse_a_weak_or_padded_password_without_echoing_it(tmp_path: Path, password: str) -> None:
    with pytest.raises(CredentialError, match="at least 24") as refused:
        set_password(NOWHERE, secured(tmp_path), HUB, password)
    assert password.strip() not in str(refused.value)


def test_the_credentials_command_refuses_a_windows_line_ending_and_never_echoes_the_password(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setattr("sys.stdin", io.StringIO(SECRET + "\r\n"))
    assert cli.main(["kafka", "credentials", HUB]) == 2
    out = capsys.readouterr()
    assert "no surrounding space" in out.err
    assert SECRET not in out.out + out.err


def test_the_credentials_command_refuses_an_unknown_principal_with_a_clear_message(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert cli.main(["kafka", "credentials", "root\nmash: new password set for hub"]) == 2
    out = capsys.readouterr()
    assert "is not a service principal" in out.err and "\nmash: new password set" not in out.err
    assert SECRET not in out.out + out.err


def test_a_missing_password_names_the_principal_and_what_to_do_and_leaks_nothing(tmp_path: Path) -> None:
    with pytest.raises(KafkaCredentialsMissing) as missing:
        kafka_python_options(secured(tmp_path), TRIAGE_APP)
    message = str(missing.value)
    assert "'triage-app'" in message and "MASH_KAFKA_PASSWORD" in message and "mash kafka start" in message


def test_a_password_file_is_read_only_by_its_owner_and_replaced_whole(tmp_path: Path) -> None:
    write_password(tmp_path / "credentials", HUB, "old-" + SECRET)
    write_password(tmp_path / "credentials", HUB, SECRET)
    path = tmp_path / "credentials" / HUB
    assert path.read_text() == SECRET
    assert path.stat().st_mode & 0o077 == 0 and (tmp_path / "credentials").stat().st_mode & 0o077 == 0
    assert [p.name for p in (tmp_path / "credentials").iterdir()] == [HUB]  # no staged copy left behind


def test_acls_apply_without_the_operators_password_is_a_clear_error(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kafka", "acls", "--apply"]) == 2
    assert "MASH_KAFKA_PASSWORD" in capsys.readouterr().err


def test_credentials_without_the_operators_password_is_a_clear_error(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert cli.main(["kafka", "credentials", HUB]) == 2
    err = capsys.readouterr().err
    assert "MASH_KAFKA_PASSWORD" in err and SECRET not in err


def test_a_missing_ca_file_is_reported_as_the_setting_it_is(tmp_path: Path) -> None:
    settings = secured(tmp_path, kafka_password=SecretStr(SECRET), kafka_ssl_cafile=tmp_path / "nope.pem")
    for options in (kafka_python_options, aiokafka_options):
        with pytest.raises(Exception, match="MASH_KAFKA_SSL_CAFILE"):
            options(settings, HUB)


def test_no_client_logs_the_password_even_at_debug(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kafka import KafkaAdminClient

    settings = secured(tmp_path, kafka_password=SecretStr(SECRET))
    with caplog.at_level(logging.DEBUG), pytest.raises(Exception):  # noqa: B017  # nothing listens: it cannot bootstrap
        KafkaAdminClient(bootstrap_servers=NOWHERE, bootstrap_timeout_ms=200, **kafka_python_options(settings, HUB))
    assert SECRET not in caplog.text


@pytest.mark.parametrize("prefix", ["", "t.", "mash.", "mash.requests.", "-", "mash.requests.x."])
def test_the_triage_apps_prefixed_grant_matches_only_request_topics_of_its_own_deployment(prefix: str) -> None:
    settings = Settings(topic_prefix=prefix, app_id="app")
    (prefixed,) = {g.name for g in grants(settings) if g.pattern == "PREFIXED"}
    assert prefixed == prefix + REQUESTS_PREFIX
    matched = {spec.name for spec in CATALOGUE if topic_name(spec.name, settings).startswith(prefixed)}
    assert matched == {spec.name for spec in CATALOGUE if spec.name.startswith(REQUESTS_PREFIX)}
    assert all(g.principal == TRIAGE_APP and g.operation in ("WRITE", "CREATE")
               for g in grants(settings) if g.pattern == "PREFIXED")


def test_storage_tool_gets_the_scram_passwords_from_an_owner_only_file_not_its_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from mash import local_kafka
    from mash.kafka_acls import SERVICE_PRINCIPALS, SUPER_USERS
    from mash.kafka_security import write_passwords
    from mash.local_tls import make_tls

    principals = (*SUPER_USERS, *SERVICE_PRINCIPALS)
    passwords = write_passwords(tmp_path / "credentials", principals)
    security = local_kafka.BrokerSecurity(make_tls(tmp_path / "tls"), passwords)
    seen: list[list[str]] = []
    argfile_modes: list[int] = []

    def run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        argfile_modes.append(Path(argv[-1].removeprefix("@")).stat().st_mode)  # as the tool reads it
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", run)
    node = local_kafka.Node(1, 1, 2)
    local_kafka._prepare(tmp_path, Settings().kafka_jars_dir, node, [node], "c" * 22, security=security)
    (argv,) = seen
    assert not any(password in " ".join(argv) for password in security.passwords.values())
    assert SECRET not in repr(security) and all(p not in repr(security) for p in security.passwords.values())
    assert argfile_modes[0] & 0o077 == 0
    assert not Path(argv[-1].removeprefix("@")).exists()  # gone once the tool has run: it goes stale at a rotation
    assert (tmp_path / "server.properties").stat().st_mode & 0o077 == 0
