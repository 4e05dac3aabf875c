import time

from services.hub.stage_loop import Progress


def test_a_stage_with_work_waiting_and_no_commit_for_longer_than_the_limit_is_stalled() -> None:
    progress = Progress(pending=12, last_progress=100.0)
    assert not progress.stalled(60, now=150.0)
    assert progress.stalled(60, now=161.0)


def test_a_stage_with_nothing_to_do_is_never_stalled_however_long_it_waits() -> None:
    assert not Progress(pending=0, last_progress=0.0).stalled(60, now=10_000.0)


def test_readiness_names_the_stalled_stage_and_its_metric_says_so() -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    from mash import metrics
    from services.hub.operations import stage_checks

    stuck = SimpleNamespace(stage="triage", progress=Progress(pending=40, last_progress=time.monotonic() - 3600))
    moving = SimpleNamespace(stage="sharing", progress=Progress(pending=40))
    checks = stage_checks(cast(Any, [stuck, moving]), stall_after_s=60)
    assert checks == {"stage:triage": False, "stage:sharing": True}
    assert metrics.STAGE_STALLED.labels("triage")._value.get() == 1
    assert metrics.STAGE_STALLED.labels("sharing")._value.get() == 0
    assert metrics.STAGE_PENDING.labels("triage")._value.get() == 40
