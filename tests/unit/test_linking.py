from datetime import date

from services.enrichment.comparisons import Profile
from services.enrichment.linking import Identifier, decide_link, identifiers_of
from services.enrichment.match_model import DEFAULT_MODEL, Candidate

NHS = Identifier("nhs", "9434765919")
UPN = Identifier("upn", "B801200005001")
LOCAL = Identifier("local", "POLICE:P1")


def test_only_identifiers_with_valid_check_characters_are_trusted() -> None:
    subject = {"local_id": "P1", "nhs_number": "943 476 5918", "upn": "b801200005001"}
    assert identifiers_of(subject, "POLICE") == [UPN, LOCAL]


def test_local_ids_are_scoped_by_agency() -> None:
    police = identifiers_of({"local_id": "123"}, "POLICE")
    health = identifiers_of({"local_id": "123"}, "HEALTH")
    assert police != health


def test_unknown_identifiers_make_a_new_person_owning_all_of_them() -> None:
    decision = decide_link([NHS, UPN, LOCAL], {}, "new")
    assert (decision.person_id, decision.method) == ("new", "NEW_PERSON")
    assert decision.attach == (NHS, UPN, LOCAL)


def test_link_follows_the_strongest_known_identifier_and_adopts_the_rest() -> None:
    decision = decide_link([NHS, UPN, LOCAL], {UPN: "p-upn", LOCAL: "p-upn"}, "new")
    assert (decision.person_id, decision.method) == ("p-upn", "UPN")
    assert decision.attach == (NHS,)
    assert decision.merge == ()


def test_identifiers_owned_by_two_persons_prove_one_child_and_merge_into_the_strongest_owner() -> None:
    decision = decide_link([NHS, UPN, LOCAL], {NHS: "p1", UPN: "p2", LOCAL: "p3"}, "new")
    assert (decision.person_id, decision.method) == ("p1", "NHS_NUMBER")
    assert decision.merge == ("p2", "p3")
    assert decision.attach == ()


def test_an_agency_id_alone_links_to_that_agencys_earlier_events() -> None:
    decision = decide_link([LOCAL], {LOCAL: "p1"}, "new")
    assert (decision.person_id, decision.method, decision.attach) == ("p1", "LOCAL_ID", ())


ASHA = Profile("ASHA", "KHAN", date(2015, 3, 4), "F", "LS61AB")


def test_an_event_without_known_identifiers_links_to_a_clear_probabilistic_match() -> None:
    sister = Profile("ZARA", "KHAN", date(2012, 7, 9), "F", "LS61AB")
    candidates = [Candidate("p1", (ASHA,)), Candidate("p2", (sister,))]
    decision = decide_link([LOCAL], {}, "new", DEFAULT_MODEL, ASHA, candidates)
    assert (decision.person_id, decision.method, decision.attach) == ("p1", "PROBABILISTIC", (LOCAL,))
    assert decision.match is not None and decision.match.evidence["dob"] == "EXACT"


def test_a_possible_match_starts_a_new_person_and_is_held_for_review() -> None:
    moved_and_renamed = Profile("ASHA", "KHAN", date(2015, 4, 3), "F", "M11AA")  # swapped date, other city
    decision = decide_link([LOCAL], {}, "new", DEFAULT_MODEL, moved_and_renamed, [Candidate("p1", (ASHA,))])
    assert (decision.person_id, decision.method, decision.review_candidate) == ("new", "NEW_PERSON", "p1")


def test_known_identifiers_decide_before_any_probabilistic_match() -> None:
    decision = decide_link([NHS, LOCAL], {NHS: "p9"}, "new", DEFAULT_MODEL, ASHA, [Candidate("p1", (ASHA,))])
    assert (decision.person_id, decision.method, decision.match) == ("p9", "NHS_NUMBER", None)


def test_a_person_id_is_made_only_for_a_new_person_not_for_a_probabilistic_link() -> None:
    """`new_person_id` as a function is called only when the decision is a new person."""
    made: list[str] = []

    def new_id() -> str:
        made.append(f"new-{len(made)}")
        return made[-1]

    linked = decide_link([LOCAL], {}, new_id, DEFAULT_MODEL, ASHA, [Candidate("p1", (ASHA,))])
    assert (linked.person_id, linked.method, made) == ("p1", "PROBABILISTIC", [])
    moved = Profile("ASHA", "KHAN", date(2015, 4, 3), "F", "M11AA")
    held = decide_link([LOCAL], {}, new_id, DEFAULT_MODEL, moved, [Candidate("p1", (ASHA,))])
    assert (held.person_id, held.method, made) == ("new-0", "NEW_PERSON", ["new-0"])
