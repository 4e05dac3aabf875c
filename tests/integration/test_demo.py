"""`mash demo` runs the pipeline, keeps it up until interrupted, and then stops all it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from mash.settings import PROJECT_ROOT
from tests.integration.conftest import wait_for


def processes_using(state_dir: Path) -> list[int]:
    """Processes whose environment or command line names the demo's state directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "environ").read_bytes() + (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(state_dir).encode() in text:
            found.append(int(proc.name))
    return found


def test_demo_summarises_then_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASH_")}
    env["MASH_STATE_DIR"] = str(tmp_path)
    with log.open("wb") as out:
        demo = subprocess.Popen([sys.executable, "-m", "mash.cli", "demo"], env=env, cwd=PROJECT_ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        def summarised() -> bool:
            assert demo.poll() is None, f"the demo exited early:\n{log.read_text()[-3000:]}"
            return "Ctrl-C stops everything" in log.read_text()

        wait_for(summarised, timeout_s=300, what="the demo to print its summary")
        text = log.read_text()
        # conservation after the samples and after the synth feed, the audit trail, the triage app
        assert "[FAILED]" not in text and text.count("[ok]") == 19
        assert "[ok] education answered by its connector from the school database" in text
        assert "[ok] adults' social care did not answer: OVERDUE, ESCALATED" in text
        assert re.search(r"\[ok\] \w+ \(whose event opened the alert\) told the outcome", text)
        assert "[ok] mash audit verify" in text and "intact" in text
        assert re.search(r"\[ok\] the queue shows the manager [1-9]\d* open alerts", text)
        assert re.search(r"manager +\S{16} +triage_manager", text)  # a password made for this run
        app_port = int(re.findall(r"triage app: http://127\.0\.0\.1:(\d+)/", text)[0])
        assert "ground truth of the synthetic feed" in text
        assert re.search(r"alerts raised: [1-9]", text)
        port = int(re.findall(r"broker ready at 127\.0\.0\.1:(\d+)", text)[0])
        assert processes_using(tmp_path / "demo")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:  # a failed check above: still stop what the demo started
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
    assert "stopped every process the demo started" in log.read_text()
    assert processes_using(tmp_path / "demo") == []
    for gone in (port, app_port):  # the broker and the triage app
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", gone)) != 0
