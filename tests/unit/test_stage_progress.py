from services.hub.stage_loop import Progress


def test_a_stage_with_work_waiting_and_no_commit_for_longer_than_the_limit_is_stalled() -> None:
    progress = Progress(pending=12, last_progress=100.0)
    assert not progress.stalled(60, now=150.0)
    assert progress.stalled(60, now=161.0)


def test_a_stage_with_nothing_to_do_is_never_stalled_however_long_it_waits() -> None:
    assert not Progress(pending=0, last_progress=0.0).stalled(60, now=10_000.0)
