"""Attacks on `mash kafka bundle`, the compose stack's secured broker and the suite's per-test ACLs.

A test marked xfail(strict=True) documents a defect found (it fails today and must be fixed, not
deleted, when it starts passing); the others are attacks that failed, kept as regression tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from mash.acl_sync import acl_of, revoke_acls, sync_acls
from mash.broker_bundle import BundleExists, write_bundle
from mash.cli import main
from mash.kafka_acls import SERVICE_PRINCIPALS, SUPER_USERS, Grant, grants
from mash.kafka_security import BROKER, HUB, OPERATOR, KafkaSecurityError, credentials_dir, password_of
from mash.settings import PROJECT_ROOT, Settings

PRINCIPALS = (*SUPER_USERS, *SERVICE_PRINCIPALS)
SCRAM_LINE = re.compile(r'SCRAM-SHA-512=\[name=(?P<name>[^,\]]+),salt="(?P<salt>[^"]+)",'
                        r'saltedpassword="(?P<salted>[^"]+)",iterations=(?P<iterations>\d+)\]')
JAAS_PASSWORD = re.compile(r'username="(?P<name>[^"]+)" password="(?P<password>[^"]+)"')
COMPOSE: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def scram_credentials(bundle: Path) -> dict[str, tuple[bytes, bytes, int]]:
    """Each principal's salted credential as the bundle gives it to the storage tool."""
    text = (bundle / "broker" / "scram.args").read_text()
    return {m["name"]: (base64.b64decode(m["salt"]), base64.b64decode(m["salted"]), int(m["iterations"]))
            for m in SCRAM_LINE.finditer(text)}


def jaas_password(path: Path) -> tuple[str, str]:
    match = JAAS_PASSWORD.search(path.read_text())
    assert match, path
    return match["name"], match["password"]


def every_password(bundle: Path) -> dict[str, str]:
    """Each principal's password as its folder (the broker's: its configuration) holds it, checked against
    the salted credential the storage tool is given for it (RFC 5802 Hi(): PBKDF2-HMAC-SHA-512)."""
    passwords = {p: (bundle / p / p).read_text() for p in PRINCIPALS if p != BROKER}
    passwords[BROKER] = jaas_password(bundle / "broker" / "server.properties")[1]
    credentials = scram_credentials(bundle)
    assert set(credentials) == set(PRINCIPALS)
    for principal, (salt, salted, iterations) in credentials.items():
        assert hashlib.pbkdf2_hmac("sha512", passwords[principal].encode(), salt, iterations) == salted, principal
    return passwords


# --- a crash mid-way, then a rerun -----------------------------------------------------------------


def test_a_rerun_after_a_crash_midway_makes_a_bundle_whose_passwords_and_ca_all_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash after some principals' folders were written (the bundle's container killed): the rerun
    must not keep a stale password or CA anywhere (the storage tool, the broker's own login, the health
    check and every service must agree)."""
    bundle = tmp_path / "bundle"
    real_copyfile = shutil.copyfile
    calls = {"n": 0}

    def crash_on_third(src: Any, dst: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed mid-way")
        return real_copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        write_bundle(bundle)
    monkeypatch.setattr(shutil, "copyfile", real_copyfile)
    stale = {p: (bundle / p / p).read_text() for p in (*SERVICE_PRINCIPALS, OPERATOR) if (bundle / p / p).exists()}
    assert stale and not (bundle / "broker" / "cluster.id").exists()

    write_bundle(bundle)  # the rerun: not refused, since the first never completed

    passwords = every_password(bundle)
    assert jaas_password(bundle / "broker" / "server.properties") == (BROKER, passwords[BROKER])
    assert jaas_password(bundle / "broker" / "client.properties") == (BROKER, passwords[BROKER])
    ca = (bundle / "broker" / "tls" / "ca.pem").read_bytes()
    for principal in PRINCIPALS:
        if principal == BROKER:
            continue
        assert (bundle / principal / principal).read_text() == passwords[principal], principal
        assert (bundle / principal / "ca.pem").read_bytes() == ca, principal
        assert sorted(p.name for p in (bundle / principal).iterdir()) == sorted([principal, "ca.pem"]), principal
    assert not (bundle / "broker" / ".passwords").exists()


def test_an_empty_cluster_id_is_not_taken_for_a_complete_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle)
    (bundle / "broker" / "cluster.id").write_text("")  # what a crash mid-write leaves
    with contextlib.suppress(BundleExists):
        write_bundle(bundle)
    assert (bundle / "broker" / "cluster.id").read_text().strip(), "a bundle with no cluster id is kept as complete"


def test_two_bundle_runs_at_once_cannot_leave_passwords_that_disagree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "bundle"
    real_copyfile = shutil.copyfile
    state = {"n": 0, "other_ran": False}

    def the_other_run_gets_in(src: Any, dst: Any, **kwargs: Any) -> Any:
        state["n"] += 1
        if state["n"] == 2 and not state["other_ran"]:
            state["other_ran"] = True
            monkeypatch.setattr(shutil, "copyfile", real_copyfile)
            with contextlib.suppress(BundleExists):
                write_bundle(bundle)  # a second run, from start to end, while the first is half-way
            monkeypatch.setattr(shutil, "copyfile", the_other_run_gets_in)
        return real_copyfile(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", the_other_run_gets_in)
    with contextlib.suppress(BundleExists):
        write_bundle(bundle)
    passwords = every_password(bundle)
    disagree = [p for p in PRINCIPALS if p != BROKER and (bundle / p / p).read_text() != passwords[p]]
    assert not disagree


def test_a_complete_bundle_is_never_rewritten(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle)
    before = {p: p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
    with pytest.raises(BundleExists):
        write_bundle(bundle, host="other", port=19092)
    assert {p: p.read_bytes() for p in bundle.rglob("*") if p.is_file()} == before


# --- secrets: where each password is, and who can read it -------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_every_file_holding_a_password_is_owner_only_even_with_a_permissive_umask(
    tmp_path: Path, permissive_umask: None,
) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle)
    secrets = set(every_password(bundle).values())
    for path in bundle.rglob("*"):
        if path.is_file() and (any(s in path.read_text(errors="replace") for s in secrets) or "PRIVATE KEY" in
                               path.read_text(errors="replace")):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for folder in (bundle / "broker", *(bundle / p for p in PRINCIPALS if p != BROKER)):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_each_principals_folder_holds_its_own_password_and_no_other(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle)
    passwords = every_password(bundle)
    assert len(set(passwords.values())) == len(passwords)  # no two principals share one
    for principal in PRINCIPALS:
        if principal == BROKER:
            continue
        text = "".join(p.read_text() for p in (bundle / principal).iterdir())
        for other, password in passwords.items():
            assert (password in text) == (other == principal), (principal, other)
    for name in ("server.properties", "client.properties", "cluster.id"):
        text = (bundle / "broker" / name).read_text()
        assert [p for p, pw in passwords.items() if pw in text] in ([], [BROKER]), name


def test_the_broker_volume_holds_no_services_plaintext_password(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_bundle(bundle)
    services = {p: (bundle / p / p).read_text() for p in SERVICE_PRINCIPALS}
    for path in (bundle / "broker").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not [p for p, pw in services.items() if pw in text], path


def test_the_bundle_command_never_prints_a_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    assert main(["kafka", "bundle", str(bundle), "--host", "kafka", "--port", "9092"]) == 0
    assert main(["kafka", "bundle", str(bundle)]) == 0  # made once: left as it is
    assert main(["kafka", "bundle", str(tmp_path / "other"), "--host", "bad host"]) == 2
    out = capsys.readouterr()
    for password in every_password(bundle).values():
        assert password not in out.out + out.err


# --- configuration injection --------------------------------------------------------------------


@pytest.mark.parametrize("host", ["kafka\n", "kafka\r", "kafka\rallow.everyone.if.no.acl.found=true",
                                  "k\u0430fka",  # a Cyrillic a
                                  "kafka\u2028x", "kafka.", ".kafka", "a" * 64, "kafka#x", "kafka\\", "::1",
                                  "${env:X}"])
def test_a_host_with_a_line_break_unicode_or_a_property_metacharacter_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        write_bundle(tmp_path / "bundle", host=host)
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_a_port_out_of_range_is_refused(tmp_path: Path, port: int) -> None:
    with pytest.raises(ValueError):
        write_bundle(tmp_path / "bundle", port=port)


def test_a_client_port_equal_to_the_controller_port_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    assert main(["kafka", "bundle", str(out), "--port", "9093"]) == 2
    assert not (out / "broker" / "cluster.id").exists()


# --- the compose file as docker compose reads it ------------------------------------------------------


def mash_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in COMPOSE["services"].items() if str(s.get("image", "")).startswith("mash-bus:")}


def test_compose_each_secret_volume_is_mounted_only_by_its_own_principals_services() -> None:
    """After YAML merges: the broker's volume by the broker (read-only) and the bundle's maker only, a
    principal's by the maker and that principal's services only, and no service has two."""
    mounts: dict[str, set[str]] = {}
    for name, service in COMPOSE["services"].items():
        volumes = service.get("volumes") or []
        secret = [v for v in volumes if str(v).startswith("kafka-") and not str(v).startswith("kafka-data:")]
        if name != "kafka-bundle":
            assert len(secret) <= 1, name
        for volume in secret:
            mounts.setdefault(str(volume).split(":")[0], set()).add(name)
    assert mounts.pop("kafka-broker") == {"kafka-bundle", "kafka"}
    assert "kafka-broker:/etc/kafka/mash:ro" in COMPOSE["services"]["kafka"]["volumes"]
    for volume, services in mounts.items():
        principal = volume.removeprefix("kafka-")
        assert principal in PRINCIPALS and principal != BROKER, volume
        users = services - {"kafka-bundle"}
        assert users, volume
        for user in users:
            assert COMPOSE["services"][user]["volumes"] == [f"{volume}:/run/mash-kafka:ro"], user


def test_compose_merges_keep_the_secured_environment_and_add_no_credentials() -> None:
    for name, service in mash_services().items():
        env = service["environment"]
        assert env["MASH_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["MASH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert not {"MASH_KAFKA_USERNAME", "MASH_KAFKA_PASSWORD"} & set(env), name
        assert "PLAINTEXT" not in str(env), name


def test_compose_shell_lines_escape_their_dollars_for_compose() -> None:
    """`$(...)` unescaped would be interpolated by compose (to empty, or refused) before the shell sees it."""
    for name, service in COMPOSE["services"].items():
        for part in service.get("command") or []:
            if isinstance(part, str):
                assert not re.search(r"(?<!\$)\$(?![${])", part.replace("$$", "")), name
    assert '"$$(cat /etc/kafka/mash/cluster.id)"' in COMPOSE["services"]["kafka"]["command"][0]


def test_compose_hands_every_folder_the_bundle_writes_to_the_user_that_reads_it(tmp_path: Path) -> None:
    made = write_bundle(tmp_path / "bundle")
    script = COMPOSE["services"]["kafka-bundle"]["command"][0]
    handed = script.split("chown -R 10001", 1)[1].split()
    assert sorted(handed) == sorted(f"/bundle/{p}" for p in made)
    assert sorted(v.split(":")[1] for v in COMPOSE["services"]["kafka-bundle"]["volumes"]) == sorted(
        ["/bundle/broker", *(f"/bundle/{p}" for p in made)])


# --- the credentials folder ---------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["../outside", "ABSOLUTE"])
def test_a_principal_name_cannot_lead_the_password_read_out_of_the_credentials_folder(
    tmp_path: Path, principal: str,
) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.write_text("not-a-password-file")
    name = str(outside) if principal == "ABSOLUTE" else principal
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_credentials_dir=folder, kafka_username=name)
    with pytest.raises(KafkaSecurityError, match="not a principal's name"):
        password_of(settings, HUB)


def test_an_empty_credentials_dir_setting_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_KAFKA_CREDENTIALS_DIR", "")
    settings = Settings(state_dir=tmp_path)
    assert credentials_dir(settings) == tmp_path / "kafka" / "credentials"


def test_a_configured_password_wins_over_the_credentials_folder(tmp_path: Path) -> None:
    folder = tmp_path / "credentials"
    folder.mkdir()
    (folder / HUB).write_text("from-the-folder")
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_credentials_dir=folder,
                        kafka_password=SecretStr("Zq7-set-in-env"))
    assert password_of(settings, HUB) == "Zq7-set-in-env"
    assert "from-the-folder" not in repr(settings) and "Zq7-set-in-env" not in repr(settings)


# --- per-deployment ACLs on a shared broker ------------------------------------------------------------


def acl_key(acl: Any) -> tuple[str, str, str, str, str, str, str]:
    pattern = acl.resource_pattern
    return (acl.principal, str(acl.host), acl.operation.name, acl.permission_type.name,
            pattern.resource_type.name, str(pattern.resource_name), pattern.pattern_type.name)


class FakeAdmin:
    """A broker's ACLs in memory: describe returns them, delete removes exact matches of each filter."""

    held: list[Any] = []
    deleted: list[Any] = []

    def __init__(self, **_: Any) -> None:
        pass

    def describe_acls(self, _filter: Any) -> tuple[list[Any], None]:
        return list(FakeAdmin.held), None

    def create_acls(self, acls: list[Any]) -> dict[str, list[Any]]:
        FakeAdmin.held += acls
        return {"succeeded": acls, "failed": []}

    def delete_acls(self, filters: list[Any]) -> list[Any]:
        keys = {acl_key(f) for f in filters}
        FakeAdmin.deleted += [a for a in FakeAdmin.held if acl_key(a) in keys]
        FakeAdmin.held = [a for a in FakeAdmin.held if acl_key(a) not in keys]
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def broker_acls(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    import kafka

    FakeAdmin.held, FakeAdmin.deleted = [], []
    monkeypatch.setattr(kafka, "KafkaAdminClient", FakeAdmin)
    return FakeAdmin


def tenant(prefix: str, app_id: str = "mash-hub") -> Settings:
    return Settings(kafka_security_protocol="PLAINTEXT", topic_prefix=prefix, app_id=app_id)


def held(settings: Settings) -> set[tuple[str, ...]]:
    return {acl_key(acl_of(g)) for g in grants(settings)}


def test_revoking_a_test_deployment_leaves_every_other_test_deployments_grants(broker_acls: type[FakeAdmin]) -> None:
    """The suite's `settings` fixture: its own prefix and its own app id per test."""
    mine, theirs = tenant("t11111111.", "mash-test-11111111"), tenant("t22222222.", "mash-test-22222222")
    sync_acls("", theirs)
    sync_acls("", mine)
    revoke_acls("", mine)
    assert {acl_key(a) for a in broker_acls.held} == held(theirs)
    for acl in broker_acls.deleted:
        assert acl_key(acl) in held(mine)


def test_revoking_a_contract_kits_deployment_leaves_the_live_deployment_its_grants(
    broker_acls: type[FakeAdmin],
) -> None:
    """Group grants are named from the app id alone, so deployments sharing a cluster differ in both topic
    prefix and app id (settings.app_id says so); the contract kit gives each of its throwaway deployments
    its own of both (connectors/testkit.py), so retiring one never strips a live deployment's groups."""
    live, kit = tenant(""), tenant("k00000000.", "mash-kit-00000000")
    sync_acls("", live)
    sync_acls("", kit)
    revoke_acls("", kit)
    lost = held(live) - {acl_key(a) for a in broker_acls.held}
    assert not lost, sorted(lost)


def test_syncing_the_default_deployment_leaves_a_mash_prefixed_tenants_grants(broker_acls: type[FakeAdmin]) -> None:
    other = tenant("mash.eu.", "mash-eu")
    sync_acls("", other)
    changes = sync_acls("", tenant(""))
    assert not changes.deleted
    assert held(other) <= {acl_key(a) for a in broker_acls.held}


def test_revoke_deletes_exact_grants_only_never_a_wildcard_or_match_filter(broker_acls: type[FakeAdmin],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    def record(_self: FakeAdmin, filters: list[Any]) -> list[Any]:
        sent.extend(filters)
        return []

    monkeypatch.setattr(FakeAdmin, "delete_acls", record)
    revoke_acls("", tenant("t3."))
    assert sent
    for acl in sent:
        key = acl_key(acl)
        assert key[0].startswith("User:") and key[0] != "User:*" and key[1] == "*", key
        assert key[6] in {"LITERAL", "PREFIXED"} and key[2] != "ANY" and key[3] == "ALLOW", key
        assert key[5] != "*" and key[5].startswith(("t3.", "mash-hub.")), key


def test_sync_never_deletes_a_grant_of_a_principal_the_bus_does_not_declare(broker_acls: type[FakeAdmin]) -> None:
    foreign = Grant("someone-else", "TOPIC", "mash.inbound.police", "READ")
    broker_acls.held = [acl_of(foreign)]
    sync_acls("", tenant(""))
    assert acl_key(acl_of(foreign)) in {acl_key(a) for a in broker_acls.held}
