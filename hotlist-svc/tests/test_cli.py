"""``lprctl hotlist import`` against the database: a version on success, nothing on failure."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from lpr_hotlist.testing import AuditLog, ncic_line
from lprctl.commands import hotlist as hotlist_command
from lprctl.main import build_parser


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def agency() -> str:
    return "ZC" + secrets.token_hex(4).upper()[:7]


def test_cli_import_creates_a_version_and_audits_it(
    service_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    agency: str,
) -> None:
    log = AuditLog()

    def audit_client(base_url: str, **_: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(log.handler), base_url=base_url)

    monkeypatch.setattr(hotlist_command, "build_client", audit_client)
    file = tmp_path / "ncic.txt"
    file.write_text(f"{ncic_line('V', 'CLI123')}\n{ncic_line('Q', 'BAD')}\n")
    argv = ["hotlist", "import", str(file), "--list", "NCIC", "--format", "ncic"]
    argv += ["--source", "NCIC", "--agency", agency, "--user", "admin-7"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "version 1: 1 entries (added 1, removed 0, unchanged 0, rejected 1)" in out
    assert "line 2: list code 'Q'" in out
    [event] = log.events
    assert (event["event_type"], event["subject_name"], event["agency"]) == (
        "hotlist.imported",
        "admin-7",
        agency,
    )
    assert run(["hotlist", "lists", "--agency", agency]) == 0
    assert "v1" in capsys.readouterr().out


def test_cli_import_changes_nothing_when_it_cannot_audit_or_read_the_file(
    service_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    agency: str,
) -> None:
    monkeypatch.setenv("LPR_AUDIT_URL", "http://127.0.0.1:9")
    file = tmp_path / "ncic.txt"
    file.write_text(ncic_line("V", "CLI123") + "\n")
    argv = ["hotlist", "import", str(file), "--list", "NCIC", "--format", "ncic"]
    argv += ["--source", "NCIC", "--agency", agency]
    assert run(argv) == 1
    assert "audit log unavailable" in capsys.readouterr().err
    malformed = tmp_path / "bad.csv"
    malformed.write_text("name,colour\nBob,red\n")
    argv = ["hotlist", "import", str(malformed), "--list", "L", "--format", "csv"]
    assert run([*argv, "--source", "NCIC", "--agency", agency]) == 1
    assert "no valid header" in capsys.readouterr().err
    assert run(["hotlist", "lists", "--agency", agency]) == 0
    assert capsys.readouterr().out == ""
