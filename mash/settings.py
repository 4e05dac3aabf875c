"""One typed settings object, read from `MASH_*` environment variables.

Every default runs the embedded stack on one machine: a local Kafka broker on loopback and a
SQLite file under `.mash/`. Production overrides them (a Kafka cluster, PostgreSQL) without code
changes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Settings for every process of the bus; each field documents its `MASH_` variable."""

    # An empty MASH_* is unset (as an env file or compose's `${VAR:-}` leaves it), never a value: an empty
    # path would otherwise be the working directory.
    model_config = SettingsConfigDict(env_prefix="MASH_", frozen=True, extra="ignore", env_ignore_empty=True)

    bootstrap_servers: str = Field(
        "",
        description="Kafka bootstrap servers (host:port,...). Empty means: use the embedded "
        "broker recorded in `state_dir` by `mash kafka start`.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = Field(
        "SASL_SSL", description="How every client connects to Kafka: SASL_SSL is TLS and SCRAM-SHA-512 as the "
        "service's own principal (`mash kafka acls` lists what each may do); `mash kafka start` and `mash demo` "
        "start the embedded broker so, with a throwaway CA and a password per principal. PLAINTEXT: no "
        "encryption and no authentication, for development only.",
    )
    kafka_username: str = Field(
        "", description="The SASL/SCRAM principal this process connects as. Empty: its service's own principal "
        "(hub, triage-app, connector-<agency>, operator), as the embedded broker creates them.",
    )
    kafka_password: SecretStr = Field(
        SecretStr(""), description="The principal's SCRAM password. Empty: the embedded broker's, from "
        "`state_dir/kafka/credentials/`. Secret: never printed.",
    )
    kafka_credentials_dir: Path | None = Field(
        None, description="Where the embedded broker's password files are, one per principal (owner-only). "
        "Unset: `state_dir/kafka/credentials/`. For processes that share one embedded broker but keep state "
        "apart (the test suite); ignored where MASH_KAFKA_PASSWORD is set.",
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA the brokers' certificates chain to. Unset: the embedded broker's "
        "throwaway CA when it runs secured, else the system's trust store.",
    )
    state_dir: Path = Field(
        PROJECT_ROOT / ".mash",
        description="Where the embedded stack keeps its broker data, pid files and SQLite file.",
    )
    database_url: SecretStr = Field(
        SecretStr(""),
        description="SQLAlchemy URL of the hub's database. Empty means a SQLite file in "
        "`state_dir`. Secret: never printed.",
    )
    database_owner_url: SecretStr = Field(
        SecretStr(""),
        description="SQLAlchemy URL as the role that owns the schema, for `mash db upgrade` only (migrations "
        "and grants); processes never use it. Empty means `database_url`. Secret: never printed.",
    )
    database_runtime_role: str = Field(
        "", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$",
        description="On PostgreSQL, the role the processes connect as: `mash db upgrade` grants it rows in "
        "every table but may only read and append to the audit trail (no UPDATE, DELETE, TRUNCATE or DDL). "
        "Empty means the user named in `database_url` when it differs from the owner's.",
    )
    topic_prefix: str = Field(
        "",
        description="Prefix for every topic name; lets tests and tenants share one broker.",
    )
    app_id: str = Field("mash-hub", description="The hub's name on the broker: each stage's consumer group is "
                        "<app_id>.<stage> (workers with the same id share the work). Deployments sharing a cluster "
                        "differ in both this and the topic prefix: their consumer groups and group ACLs are named "
                        "from it.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the hub's topics.")
    replication_factor: int = Field(1, ge=1, description="Replication of created topics.")
    triage_scoring: Path = Field(
        PROJECT_ROOT / "policies" / "triage" / "scoring.yaml",
        description="The RAG scoring rules (YAML): indicators, weights, thresholds; check with `mash triage test`.",
    )
    triage_profile: Path = Field(
        PROJECT_ROOT / "policies" / "triage" / "rapid-2h-6h-24h.yaml",
        description="The partnership's RAG profile (YAML): response time per rating, working hours, the "
        "region whose bank holidays count (england-and-wales, scotland, northern-ireland), extra closure days.",
    )
    triage_request_profile: Path = Field(
        PROJECT_ROOT / "policies" / "triage" / "standard-4h-24h-72h.yaml",
        description="The clocks of a MASH enquiry's information requests to partner agencies (YAML, as a RAG "
        "profile): by the enquiry's rating, RED 4 hours, AMBER 24 and GREEN 72 by default.",
    )
    match_model: Path | None = Field(
        None, description="A match model (JSON, from `mash hub match-model estimate`) for probabilistic "
        "linking; unset: the model `estimate` last accepted from this partnership's own records "
        "(`<state_dir>/match-model.json`), else the shipped default weights.",
    )
    sharing_policy: Path = Field(
        PROJECT_ROOT / "policies" / "sharing" / "default.yaml",
        description="The information-sharing policy (YAML) the sharing stage applies; a change to the file "
        "takes effect at the next batch, and a change that fails to load is refused (the last good policy stays).",
    )
    audit_signing_key: SecretStr = Field(
        SecretStr(""), description="Key (at least 32 bytes) this process signs its audit entries with, so an entry "
        "appended by anyone without it is told apart. Empty: a key made once and kept in "
        "`state_dir/audit-signing.key` (mode 0600), for the embedded stack. In production set it from a secret "
        "store, one per writer (hub, triage app) if you like. Secret: never printed.",
    )
    audit_verify_keys: SecretStr = Field(
        SecretStr(""), description="Further keys (comma-separated) whose signatures `mash audit verify` accepts, "
        "each named for the writer whose chains it signs: `triage-app:<key>` (the app's), `hub:<key>` (a hub key "
        "rotated out; the sharing stage trusts these too). A bare key is accepted on any chain by the verifier, "
        "never by the stage. Secret: never printed.",
    )
    triage_host: str = Field("127.0.0.1", description="Address the triage web app listens on (loopback by default).")
    triage_port: int = Field(8765, ge=0, le=65535, description="Port of the triage web app (0: any free port).")
    triage_secret_key: SecretStr = Field(
        SecretStr(""), description="Key of the triage app's log-in form tokens (HMAC). Empty: a random key per "
        "start (a log-in page open across a restart is reloaded). Set it in production, from a secret store; "
        "`mash triage serve` refuses a short or patterned one and says how to make one. Secret: never printed.",
    )
    triage_secure_cookies: bool | None = Field(
        None, description="Send the triage app's cookies only over HTTPS, and HSTS. Unset: on, unless "
        "`triage_host` is a loopback address (the embedded stack); set false only for plain HTTP you trust.",
    )
    triage_trusted_proxies: str = Field(
        "", description="Addresses or networks (comma-separated) of the TLS proxies in front of the triage app: "
        "only from these are X-Forwarded-Proto and X-Forwarded-For believed (redirects keep https; log-in "
        "back-off counts the client's address, not the proxy's). Empty: none.",
    )
    triage_session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A triage app session unused this long ends (the queue's own refresh "
        "is not use).")
    triage_session_max_hours: float = Field(
        12.0, gt=0, le=7 * 24, description="A triage app session ends this long after log-in, however used.")
    triage_api_docs: bool = Field(
        True, description="Serve the API's Swagger UI at /api/docs (from the app itself; /api/openapi.json is "
        "served either way); false to leave it out in production.")
    metrics_host: str = Field("127.0.0.1", description="Address each process serves /metrics, /healthz and "
                              "/readyz on (loopback by default; 0.0.0.0 in a container).")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port for /metrics, /healthz, /readyz (0: any free "
                              "port, announced in the log and under state_dir/metrics-targets/ for Prometheus).")
    log_format: str = Field("json", pattern="^(json|text)$", description="Log lines as JSON (one object per line, "
                            "for a log shipper) or plain text for a terminal. Never with personal data either way.")
    kafka_jars_dir: Path = Field(
        PROJECT_ROOT / "infra" / "kafka" / "lib",
        description="Where `mash kafka fetch` puts the broker's jars.",
    )
    stage_stall_after_s: float = Field(
        60.0, gt=0, description="A hub stage holding work that commits nothing for this long is reported "
        "stalled (/readyz, mash_stage_stalled).")
    hub_process_per_stage: bool = Field(
        True, description="`mash hub worker` runs each of its stages in a process of its own (Python runs one "
        "thread at a time: one process uses one core), supervised as one worker; false: all in one process.")
    stage_retry_budget_s: float = Field(
        300.0, ge=0, description="How long a hub stage retries a failing batch (database or "
        "broker down) before the worker exits for its supervisor to restart it.",
    )
    demo_exit: bool = Field(False, description="`mash demo` exits after printing its summary.")
    demo_synth_events: int = Field(
        2000, ge=0, le=2_000_000, description="After the samples, the demo runs a `mash synth` feed of this "
        "many events and compares the alerts with its ground truth; 0 skips it.",
    )
    demo_timeout_s: float = Field(180.0, gt=0, description="How long the demo waits to drain.")

    def sqlalchemy_url(self) -> str:
        url = self.database_url.get_secret_value()
        return url or f"sqlite:///{self.state_dir / 'mash.db'}"

    def learned_match_model(self) -> Path:
        """Where `mash hub match-model estimate` writes the model it accepts."""
        return self.state_dir / "match-model.json"

    def match_model_in_use(self) -> Path | None:
        """The match model file the hub links with: the one set, else the learned one if accepted."""
        learned = self.learned_match_model()
        return self.match_model or (learned if learned.exists() else None)

    def owner_url(self) -> str:
        """Where `mash db upgrade` connects: the schema owner's URL, else the processes' own."""
        return self.database_owner_url.get_secret_value() or self.sqlalchemy_url()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
