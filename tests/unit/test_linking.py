from services.enrichment.linking import Identifier, decide_link, identifiers_of

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
    assert decision.conflicts == ()


def test_identifiers_owned_by_two_persons_are_flagged_never_moved() -> None:
    decision = decide_link([NHS, UPN, LOCAL], {NHS: "p1", UPN: "p2"}, "new")
    assert (decision.person_id, decision.method) == ("p1", "NHS_NUMBER")
    assert decision.conflicts == (UPN,)
    assert UPN not in decision.attach


def test_an_agency_id_alone_links_to_that_agencys_earlier_events() -> None:
    decision = decide_link([LOCAL], {LOCAL: "p1"}, "new")
    assert (decision.person_id, decision.method, decision.attach) == ("p1", "LOCAL_ID", ())
