from prometheus_client import REGISTRY

from mash.topics import ALERTS, DEADLETTER, OUTCOMES, SHARED
from services.hub.observe import HubObserver
from services.messages import InMessage, OutMessage


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_batch_is_counted_from_its_topics_and_operator_headers() -> None:
    observer = HubObserver("t1.", ["mash_social_worker"])
    counted = {  # the registry is the process's: only the difference this batch makes is its own
        ("mash_event_outcomes_total", ("agency", "POLICE"), ("outcome", "ALERT_RAISED")): 1,
        ("mash_stage_messages_in_total", ("stage", "triage"), ("topic", "mash.inbound.police.v1")): 1,
        ("mash_alert_revisions_total", ("rag", "RED"), ("change", "opened")): 1,
        ("mash_sharing_decisions_total", ("role", "mash_social_worker"), ("outcome", "SHARE")): 1,
        ("mash_sharing_decisions_total", ("role", "other"), ("outcome", "WITHHOLD")): 1,  # not a known role here
        ("mash_sharing_decisions_total", ("role", "mash_police_officer"), ("outcome", "WITHHOLD")): 0,
    }
    before = {key: sample(key[0], **dict(key[1:])) for key in counted}
    outcome = OutMessage(OUTCOMES, b"event-1", b"", [("mash.outcome", b"ALERT_RAISED"),
                                                     ("mash.agency", b"POLICE"), ("mash.received_ms", b"0"),
                                                     ("mash.occurred_ms", b"0")])
    alert = OutMessage(ALERTS, b"p", b"", [("mash.rag", b"RED"), ("mash.change", b"opened")])
    shared = OutMessage(SHARED, b"p", b"", [("mash.sharing", b"mash_social_worker=SHARE;mash_police_officer=WITHHOLD")])
    inbound = InMessage("t1.mash.inbound.police.v1", 0, 0, b"k", b"")
    observer.batch("triage", [inbound], [outcome, alert, shared], 0.01)
    assert {key: sample(key[0], **dict(key[1:])) - before[key] for key in counted} == counted
    assert sample("mash_last_event_timestamp_seconds", agency="POLICE") > 0


def test_text_in_a_header_never_becomes_a_label() -> None:
    observer = HubObserver("", [])
    before = sample("mash_dead_letters_total", stage="other", reason="other")
    hostile = "Jane Doe <script>"
    dead = OutMessage(DEADLETTER, b"k", b"", [("mash.dlq.stage", hostile.encode()),
                                              ("mash.dlq.error_class", hostile.encode())])
    outcome = OutMessage(OUTCOMES, b"e", b"", [("mash.outcome", hostile.encode()), ("mash.agency", hostile.encode())])
    observer.batch("sharing", [], [dead, outcome], 0.01)
    text = "\n".join(f"{s.labels}" for family in REGISTRY.collect() for s in family.samples)
    assert "Jane" not in text
    assert sample("mash_dead_letters_total", stage="other", reason="other") == before + 1
