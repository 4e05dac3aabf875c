"""A secured embedded broker as the security tests see it: its settings, and a client per principal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient

from mash.kafka_acls import grants
from mash.kafka_security import kafka_python_options
from mash.local_kafka import AUTHORIZER_LOG, BrokerProcess
from mash.settings import Settings


@dataclass
class Secured:
    settings: Settings
    broker: BrokerProcess

    def client(self, principal: str) -> dict[str, Any]:
        return {"bootstrap_servers": self.settings.bootstrap_servers, "request_timeout_ms": 10_000,
                **kafka_python_options(self.settings, principal)}

    def admin(self, principal: str) -> KafkaAdminClient:
        return KafkaAdminClient(**self.client(principal))

    def groups(self) -> dict[str, str]:
        return {g.principal: g.name for g in grants(self.settings) if g.resource == "GROUP"}

    def authorizer_log(self) -> str:
        return (self.broker.data_dir / AUTHORIZER_LOG).read_text(errors="replace")
