"""docs/how-to-write-a-connector.md, followed literally: its files, its commands, its kit run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mash.settings import PROJECT_ROOT

HOWTO = PROJECT_ROOT / "docs" / "how-to-write-a-connector.md"
BLOCK = re.compile(r'```\w+ title="([^"]+)"\n(.*?)```', re.S)


def test_the_how_to_produces_a_connector_that_passes_the_contract_kit(bootstrap: str, tmp_path: Path) -> None:
    for name, body in BLOCK.findall(HOWTO.read_text()):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body)
    (tmp_path / "my_force" / "__init__.py").write_text("")
    env = {**os.environ, "MASH_CONNECTORS": "my_force.connector:MyForceConnector",
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{PROJECT_ROOT}", "MASH_TEST_BOOTSTRAP_SERVERS": bootstrap,
           "MASH_STATE_DIR": str(tmp_path / "state")}

    check = subprocess.run([sys.executable, "-m", "mash.cli", "connector", "check", "my_force",
                            "my_force/sample.csv"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert check.returncode == 1  # step 4: the broken row fails, with its reason
    assert check.stdout.count("ok ") == 2
    assert "field 'when' is not an ISO 8601 date-time" in check.stdout

    kit = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "my_force/test_contract.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert kit.returncode == 0, kit.stdout[-3000:] + kit.stderr[-2000:]
    assert "4 passed" in kit.stdout
