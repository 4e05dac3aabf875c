import pytest

from mash.settings import Settings
from mash.topics import CATALOGUE, topic_name


def test_settings_come_from_mash_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_BOOTSTRAP_SERVERS", "127.0.0.1:9999")
    monkeypatch.setenv("MASH_TOPIC_PARTITIONS", "8")
    settings = Settings()
    assert settings.bootstrap_servers == "127.0.0.1:9999"
    assert settings.topic_partitions == 8


def test_a_bad_setting_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValueError, match="topic_partitions"):
        Settings()


def test_database_password_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_DATABASE_URL", "postgresql+psycopg://mash:s3cret@127.0.0.1/mash")
    settings = Settings()
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())
    assert "s3cret" in settings.sqlalchemy_url()


def test_default_database_is_a_sqlite_file_in_the_state_dir() -> None:
    settings = Settings(state_dir="/tmp/x")  # type: ignore[arg-type]
    assert settings.sqlalchemy_url() == "sqlite:////tmp/x/mash.db"


def test_catalogue_names_are_unique_and_versioned() -> None:
    names = [spec.name for spec in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(name.startswith("mash.") and name.endswith(".v1") for name in names)


def test_topic_prefix_applies_to_every_name() -> None:
    settings = Settings(topic_prefix="t1.")
    assert topic_name("mash.alerts.v1", settings) == "t1.mash.alerts.v1"


def test_provisioning_waits_out_a_cluster_still_settling_but_not_a_real_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh cluster may name a controller the client has not seen yet: provisioning tries again;
    an error that will not go away by itself (here, authorisation) is raised at once."""
    from kafka.errors import TopicAuthorizationFailedError, UnknownBrokerIdError

    from mash import topics

    monkeypatch.setattr(topics.time, "sleep", lambda _s: None)
    attempts: list[int] = []

    def settling(_bootstrap: str, _settings: Settings, _specs: object, _service: str) -> list[str]:
        attempts.append(1)
        if len(attempts) < 3:
            raise UnknownBrokerIdError(3)
        return ["mash.shared.v1"]

    monkeypatch.setattr(topics, "_create_missing", settling)
    assert topics.provision("127.0.0.1:1", Settings()) == ["mash.shared.v1"]
    assert len(attempts) == 3

    def refused(_bootstrap: str, _settings: Settings, _specs: object, _service: str) -> list[str]:
        raise TopicAuthorizationFailedError()

    monkeypatch.setattr(topics, "_create_missing", refused)
    with pytest.raises(TopicAuthorizationFailedError):
        topics.provision("127.0.0.1:1", Settings())
