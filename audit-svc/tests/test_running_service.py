"""The audit service as a real process: concurrent HTTP appends make one unforked chain."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lpr_audit.chain import load_or_create_checkpoint_key
from lpr_audit.tools import verify_database
from lpr_common.context import service_context_auth
from lpr_common.service import service_signer
from lprctl.pytest_plugin import RunningStack


@pytest.mark.slow
async def test_concurrent_requests_to_the_running_service_form_one_chain(
    running_stack: RunningStack,
) -> None:
    keys_dir = running_stack.settings.keys_dir
    auth = service_context_auth(service_signer(keys_dir, "gateway"), "gateway")
    async with httpx.AsyncClient(base_url=running_stack.url("audit"), auth=auth) as client:

        async def post(index: int) -> dict[str, int]:
            events = [
                {
                    "component": "gateway",
                    "event_type": "auth.login",
                    "outcome": "success",
                    "subject_id": f"user-{index}",
                }
            ] * (1 + index % 3)
            response = await client.post("/internal/v1/events", json={"events": events})
            assert response.status_code == 201, response.text
            answer: dict[str, int] = response.json()
            return answer

        answers = await asyncio.gather(*(post(i) for i in range(40)))
    seqs = sorted(s for a in answers for s in range(a["first_seq"], a["last_seq"] + 1))
    assert len(seqs) == len(set(seqs)) == sum(1 + i % 3 for i in range(40))
    public = load_or_create_checkpoint_key(keys_dir).public_key()
    report = await verify_database(
        running_stack.database_url, [public], first=seqs[0], last=seqs[-1]
    )
    assert report.first_break is None, report.to_json()
    assert report.checked == seqs[-1] - seqs[0] + 1
