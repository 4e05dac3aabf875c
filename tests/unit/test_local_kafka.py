import base64

from mash.local_kafka import new_cluster_id


def test_cluster_ids_never_look_like_an_option_to_the_storage_tool() -> None:
    ids = [new_cluster_id() for _ in range(5000)]  # about 78 would start with '-' if unchecked
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
