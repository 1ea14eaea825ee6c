"""A forwarded request reaches its owner with the path and query the caller sent.

The owner verifies the context against the path and query it receives, so any change
on the way is a 401 (or, unbound, another resource or another filter).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

import pytest

from gateway.tests.conftest import Gateway

QUERIES = [
    "plate=A+B&k=1&k=2",
    "plate=A%20B&e=&flag",
    "a=%2B&b=%26&c=%3D%3F%23",
    "a=%zz&b=%25&c=~%7e",
    "a=[1]&b={x}|^`",
    "q=%C3%A9",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_query_reaches_the_owner_as_sent_and_bound(gateway: Gateway, query: str) -> None:
    officer = await gateway.user("ofc.forwarded.query", ["officer"])
    response = await gateway.client.get(
        f"/v1/reads/00000000-0000-0000-0000-000000000001?{query}",
        headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"},
    )
    assert response.status_code == 200, response.text
    bound = response.json()["context"]["query"]
    assert parse_qsl(bound, keep_blank_values=True) == parse_qsl(query, keep_blank_values=True)


@pytest.mark.parametrize(
    "segment",
    ["a%20b", "a%3Fb", "a%23b", "%C3%A9", "a%5Cb", "a+b", "a%25", "a%2541", "50%25off", "%2E%2E"],
)
async def test_a_percent_encoded_path_reaches_the_owner_unchanged(
    gateway: Gateway, segment: str
) -> None:
    # ``a%2541`` is ``a%41`` once decoded: re-encoding the decoded path sent ``a%41``,
    # which the owner decoded to ``aA``: another resource, refused as another request.
    officer = await gateway.user("ofc.forwarded.path", ["officer"])
    response = await gateway.client.get(
        f"/v1/reads/{segment}/image?x=1",
        headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["received_path"] == f"/v1/reads/{unquote(segment)}/image"
