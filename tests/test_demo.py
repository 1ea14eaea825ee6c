"""``make demo``'s command runs to the end, and again on the data the first run left.

The README's first command starts the embedded PostgreSQL, the CPU Triton server and
every service, then walks through the platform's main job. A user runs it more than
once: the second run reuses the database (and its earlier alerts, reads and audit
records) and must still work the alerts it raised itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lprctl.postgres import free_ports

DEMO_TIMEOUT_S = 420
LPRCTL = [sys.executable, "-c", "from lprctl.main import main; main()"]


def run_demo(env: dict[str, str]) -> str:
    """``lprctl up --demo --exit-after-demo``; its output (the test fails if it fails)."""
    done = subprocess.run(
        [*LPRCTL, "up", "--demo", "--exit-after-demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_the_demo_runs_and_runs_again_on_its_own_data(tmp_path: Path) -> None:
    database, gateway, recognition, hotlist, audit, *triton = free_ports(8)
    env = {
        name: value
        for name, value in os.environ.items()
        # The demo's own embedded database, not the test session's.
        if name not in {"DATABASE_URL", "LPR_DATABASE_URL", "TRITON_URL"}
        and not name.startswith("LPR_")
    }
    env.update(
        {
            "LPR_DATA_DIR": str(tmp_path / "data"),
            "LPR_DATABASE_PORT": str(database),
            "LPR_GATEWAY_URL": f"http://127.0.0.1:{gateway}",
            "LPR_RECOGNITION_URL": f"http://127.0.0.1:{recognition}",
            "LPR_HOTLIST_URL": f"http://127.0.0.1:{hotlist}",
            "LPR_AUDIT_URL": f"http://127.0.0.1:{audit}",
            "LPR_TRITON_PORTS": ",".join(str(port) for port in triton),
        }
    )
    for run in ("first", "second"):
        output = run_demo(env)
        assert "== demo done ==" in output, f"{run} run:\n{output[-4000:]}"
        # The officer verified one alert raised in this run and flagged the other.
        assert ": verified, status checked" in output, f"{run} run:\n{output[-4000:]}"
        assert "flagged as misread" in output, f"{run} run:\n{output[-4000:]}"
        assert "result: OK" in output  # both audit chains verified
        if run == "second":
            assert "existing data reused" in output
