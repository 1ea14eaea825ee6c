"""``lprctl up`` on embedded defaults: starts, reuses data, stops cleanly, fails clearly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lprctl.postgres import free_ports
from lprctl.stack import SERVICES


@pytest.fixture
def stack_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: pytest keeps that tree 0700, and PostgreSQL runs as an
    # unprivileged user when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="lpr-test-stack-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def stack_env(stack_dir: Path) -> Iterator[dict[str, str]]:

    env = dict(os.environ)
    for name in ("DATABASE_URL", "LPR_DATABASE_URL"):
        env.pop(name, None)
    env["LPR_DATA_DIR"] = str(stack_dir / "data")
    database_port, *ports = free_ports(1 + len(SERVICES))
    env["LPR_DATABASE_PORT"] = str(database_port)
    for spec, port in zip(SERVICES, ports, strict=True):
        env[f"LPR_{spec.name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    yield env
    # Whatever happens in the test, leave nothing running.
    for process in _processes_of(stack_dir):
        process.kill()


def _processes_of(tmp_path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        mine = str(tmp_path) in cmdline or str(tmp_path) in environ.get("LPR_DATA_DIR", "")
        if mine and process.pid != os.getpid():
            found.append(process)
    return found


def lprctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "lprctl", *args]


def start_up(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        lprctl("up"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for_state(
    env: dict[str, str], process: subprocess.Popen[str], timeout_s: float = 120
) -> dict[str, dict[str, object]]:
    state_file = Path(env["LPR_DATA_DIR"]) / "lprctl.json"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"lprctl up exited early ({process.returncode}):\n{output}")
        if state_file.exists():
            components: dict[str, dict[str, object]] = json.loads(state_file.read_text())[
                "components"
            ]
            return components
        time.sleep(0.3)
    pytest.fail("lprctl up did not become ready")


@pytest.mark.slow
def test_up_status_ctrl_c_and_restart_leave_nothing_behind(
    stack_env: dict[str, str], stack_dir: Path
) -> None:
    process = start_up(stack_env)
    components = wait_for_state(stack_env, process)
    assert set(components) >= {spec.name for spec in SERVICES} | {"postgres"}

    status = subprocess.run(
        lprctl("status"), env=stack_env, capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(" ready") == len(SERVICES)

    process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "new cluster" in output
    pids = [info["pid"] for info in components.values()]
    time.sleep(0.5)
    assert [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)] == []
    assert _processes_of(stack_dir) == []

    # A second `up` reuses the data; `down` from another shell stops it.
    again = start_up(stack_env)
    wait_for_state(stack_env, again)
    down = subprocess.run(lprctl("down"), env=stack_env, capture_output=True, text=True, timeout=90)
    assert down.returncode == 0, down.stdout + down.stderr
    output, _ = again.communicate(timeout=60)
    assert "existing data reused" in output
    time.sleep(0.5)
    assert _processes_of(stack_dir) == []


def test_bad_database_url_gives_one_clear_line(stack_env: dict[str, str]) -> None:
    stack_env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/nothing"
    result = subprocess.run(lprctl("up"), env=stack_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "lprctl: cannot connect to the database at postgresql://nobody@127.0.0.1:9/"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_status_without_a_running_stack(stack_env: dict[str, str]) -> None:
    result = subprocess.run(
        lprctl("status"), env=stack_env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 3
    assert "not running" in result.stdout
