"""Deployment results tallied by a service survive a gateway that is down (IACP B.1.e).

The path through the real gateway is covered by tests/test_alerts_stack.py; here the
gateway cannot be reached at all, and nothing counted may be lost.
"""

from __future__ import annotations

from uuid import uuid4

from lpr_common.deployment_results import DeploymentResults, Tally
from lpr_common.http import build_client


async def test_counts_are_kept_for_the_next_round_while_the_gateway_is_unreachable() -> None:
    deployment = uuid4()
    async with build_client("http://127.0.0.1:9", retries=0, timeout_s=1.0) as client:
        results = DeploymentResults(client)
        results.add(deployment, reads=2)
        results.add(deployment, hits=1)
        results.add(None, reads=5)  # a read from no deployment counts nowhere
        assert await results.flush() == 0
        results.add(deployment, reads=1, dispositions=1)
        assert results.pending == {str(deployment): Tally(reads=3, hits=1, dispositions=1)}
        assert await results.flush() == 0
        assert results.pending == {str(deployment): Tally(reads=3, hits=1, dispositions=1)}
