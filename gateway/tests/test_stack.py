"""The gateway as a real process in the whole stack: bootstrap command and demo step."""

from __future__ import annotations

import secrets

import httpx
import pytest

from lprctl.demo_steps.gateway import setup_governance
from lprctl.main import build_parser
from lprctl.pytest_plugin import RunningStack


@pytest.mark.slow
def test_lprctl_admin_create_user_bootstraps_a_user_who_can_log_in(
    running_stack: RunningStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", running_stack.database_url)
    username = f"boot-{secrets.token_hex(3)}"
    args = build_parser().parse_args(
        [
            "admin",
            "create-user",
            "--username",
            username,
            "--password",
            "bootstrap-password-1",
            "--role",
            "administrator",
            "--agency",
            "CA0010000",
            "--training-expires",
            "2099-12-31",
        ]
    )
    assert args.handler(args) == 0
    assert username in capsys.readouterr().out
    again = build_parser().parse_args(
        ["admin", "create-user", "--username", username, "--password", "bootstrap-password-1"]
    )
    assert again.handler(again) == 2
    assert "taken" in capsys.readouterr().err
    with httpx.Client(timeout=10) as client:
        token = client.post(
            f"{running_stack.gateway_url}/v1/auth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": "bootstrap-password-1",
            },
        )
        assert token.status_code == 200, token.text
        users = client.get(
            f"{running_stack.gateway_url}/v1/users",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert users.status_code == 200, users.text
        assert username in {u["username"] for u in users.json()}


@pytest.mark.slow
def test_demo_step_creates_governance_and_shows_decisions(running_stack: RunningStack) -> None:
    with httpx.Client(timeout=10) as client:
        result = setup_governance(client, running_stack.gateway_url, running_stack.database_url)
    assert str(result["camera_key"]).startswith("lprcam_")
    assert result["partner_client_secret"]
    decisions = {d["request"]: d for d in result["decisions"]}  # type: ignore[attr-defined,index]
    assert decisions["officer (trained) lists cameras"]["status"] == 200
    refused = {
        "officer (training expired) lists cameras": "training-expired",
        "officer (trained) creates a user": "deny-by-default",
        "officer searches with a vague purpose": "vague-purpose",
        "partner searches for a purpose outside its MOU": "mou-purpose",
        "partner asks for images its MOU excludes": "mou-data-class",
    }
    for request, rule in refused.items():
        assert decisions[request]["status"] == 403, decisions[request]
        assert str(decisions[request]["rule"]).startswith(rule)
        assert decisions[request]["audit_event"] != "-"
    assert decisions["unknown camera key posts a read"]["status"] == 401
    assert decisions["request without credentials"]["status"] == 401
