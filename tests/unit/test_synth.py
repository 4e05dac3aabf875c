"""The synthetic feed: deterministic, messy in the ways real feeds are, and honest about the truth."""

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.registry import build_connector
from connectors.sdk.runner import prepare_all
from connectors.synth.feed import Event, rating, should_alert
from connectors.synth.generate import generate
from connectors.synth.rag_rules import Facts
from mash.codec import Codec


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".db"):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "feed"
    generate(out, 3000, seed=7)
    return out


def test_the_same_seed_gives_the_same_feed(feed: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", 3000, seed=7)
    assert digest(tmp_path / "again") == digest(feed)
    generate(tmp_path / "other", 3000, seed=8)
    assert digest(tmp_path / "other") != digest(feed)


def test_every_event_is_in_the_truth_with_the_connectors_record_id(feed: Path) -> None:
    truth = [json.loads(line) for line in (feed / "truth" / "events.jsonl").read_text().splitlines()]
    assert len(truth) == 3000
    connector = build_connector("police", feed)
    path = next((feed / "police" / "inbox").iterdir())
    ids = {Codec().decode(o.value)[0]["envelope"]["record_id"]
           for o in prepare_all(connector, connector.sample_records(path), Codec()) if o.error is None}
    assert ids <= {t["record_id"] for t in truth if t["agency"] == "police"}
    assert len(ids) > 100


def test_the_feed_is_messy_like_real_ones(feed: Path) -> None:
    truth = [json.loads(line) for line in (feed / "truth" / "events.jsonl").read_text().splitlines()]
    police = [json.loads(line) for p in sorted((feed / "police" / "inbox").iterdir())
              for line in p.read_text().splitlines()]
    missing_nhs = sum(r["nhs_number"] is None for r in police) / len(police)
    assert 0.5 < missing_nhs < 0.8  # police rarely know the NHS number
    assert any(t["resubmission"] for t in truth)
    received_order = [t["occurred_at"] for t in truth]
    assert received_order != sorted(received_order)  # arrival is out of order
    children = [json.loads(line) for line in (feed / "truth" / "children.jsonl").read_text().splitlines()]
    assert 0 < sum(c["should_alert"] for c in children) < len(children) / 5


def test_the_truth_rates_children_and_red_is_a_minority(feed: Path) -> None:
    """Most concerns need early help or a decision within a day; few an immediate strategy discussion."""
    children = [json.loads(line) for line in (feed / "truth" / "children.jsonl").read_text().splitlines()]
    rated = Counter(c["rag"] for c in children if c["should_alert"])
    assert all((c["rag"] is not None) == c["should_alert"] for c in children)
    assert all(c["rules"] and c["episodes"] for c in children if c["should_alert"])
    assert set(rated) == {"RED", "AMBER", "GREEN"}
    assert rated["RED"] < 0.2 * sum(rated.values()) < rated["GREEN"] + rated["AMBER"]


def event(agency: str, day: float, facts: Facts | None = None, episode: int = 0, change: str | None = None) -> Event:
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
    return Event(agency, 1, when, when, 1 if agency == "police" else 2, facts, episode, change=change)


def test_alert_truth_is_the_rating_of_the_childs_episodes() -> None:
    """Contacts with universal services raise nothing however many agencies have them; one agency's
    report of a serious concern is enough; a record its agency retracted tells nothing."""
    assert not should_alert([event("police", 0), event("health", 1), event("education", 2)])
    disclosure = Facts(120, sexual_abuse=True)
    assert rating([event("education", 0, disclosure, 1)]).rag == "RED"
    assert rating([event("police", 0, Facts(120, neglect="LOW"), 1), event("health", 1)]).rag == "GREEN"
    assert not should_alert([event("police", 0, disclosure, 1), event("police", 1, disclosure, 1, "WITHDRAWN")])
    assert should_alert([event("police", 0, disclosure, 1), event("police", 1, disclosure, 1, "WITHDRAWN"),
                         event("health", 1, disclosure, 1)])


def test_resubmissions_are_duplicates_and_changes_are_revisions_as_the_connectors_publish_them(feed: Path) -> None:
    """Through the connectors: every resubmission in the truth is sent with its first sending's event
    id, and every change of a record with an event id of its own."""
    from connectors.synth.replay import published_messages

    truth = [json.loads(line) for line in (feed / "truth" / "events.jsonl").read_text().splitlines()]
    messages = published_messages(feed)
    ids_per_record: dict[str, set[str]] = {}
    for m in messages:
        ids_per_record.setdefault(m.record_id, set()).add(m.event_id)
    versions: dict[str, set[str | None]] = {}  # the record as first sent (None) and its change, if any
    for t in truth:
        versions.setdefault(t["record_id"], set()).add(t["change"])
    changed = {t["record_id"] for t in truth if t["change"]}
    resubmitted = {t["record_id"] for t in truth if t["resubmission"]}
    published = set(ids_per_record)
    assert changed & published and resubmitted & published
    for record in published:
        assert len(ids_per_record[record]) == len(versions[record]), (record, versions[record])


def test_households_can_hold_twins_and_brothers_and_sisters_never_share_a_name() -> None:
    import itertools
    import random
    from datetime import date

    from connectors.synth.names import one_name
    from connectors.synth.population import Child, population

    children = population(random.Random(3), 3000, date(2025, 11, 25), 365, twins=0.5)
    homes: dict[int, list[Child]] = {}
    for child in children:
        homes.setdefault(child.household, []).append(child)
    twins = same_sex = 0
    for members in homes.values():
        assert not any(one_name(a.given, b.given) for i, a in enumerate(members) for b in members[i + 1:])
        for before, after in itertools.pairwise(members):
            twins += before.dob == after.dob
            same_sex += before.dob == after.dob and before.sex == after.sex
    assert twins > 500 and 0.55 < same_sex / twins < 0.8  # two in three twins are of one sex
    assert population(random.Random(3), 300, date(2025, 11, 25), 365) == \
        population(random.Random(3), 300, date(2025, 11, 25), 365, twins=0.0)


def test_an_episode_no_record_told_as_a_concern_is_not_rated_and_is_shown_as_unreported() -> None:
    """A manager rates only what reaches the MASH: an episode seen only in an attendance the
    clinician did not flag (`silent`) is not rated; what it would have been is kept beside."""
    from connectors.synth.feed import unreported

    abuse = Facts(40, sexual_abuse=True)
    unflagged = [event("health", 0, abuse, 1)]
    assert rating(unflagged).rag == "RED"
    assert rating(unflagged, silent={("health", 2)}).rag is None
    assert not should_alert(unflagged, silent={("health", 2)})
    assert unreported(unflagged, silent={("health", 2)}).rag == "RED"
    told_by_police_too = [*unflagged, event("police", 1, abuse, 1)]
    assert rating(told_by_police_too, silent={("health", 2)}).rag == "RED"
    assert unreported(told_by_police_too, silent={("health", 2)}).rag is None


def test_only_an_unflagged_attendance_tells_no_one_of_a_concern() -> None:
    from connectors.synth.render import tells_of_concern

    attendance = {"safeguarding_concern": False, "injury_pattern_concern": False, "child_protection_flag": False}
    assert not tells_of_concern("health", attendance)
    for flag in attendance:
        assert tells_of_concern("health", {**attendance, flag: True})
    for agency in ("police", "education", "social_care"):
        assert tells_of_concern(agency, {})


def test_the_truth_file_names_children_at_risk_no_agency_told_of(feed: Path) -> None:
    children = [json.loads(line) for line in (feed / "truth" / "children.jsonl").read_text().splitlines()]
    assert all("unreported_rag" in c for c in children)
    assert all(c["episodes"] for c in children if c["unreported_rag"])
