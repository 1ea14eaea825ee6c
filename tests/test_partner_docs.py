"""The Python example of docs/partner-api.md works as written, against the whole stack.

A partner agency copies the example, fills in our gateway's address and the client
credentials our administrator gave it, and runs it. Here only those two lines are
replaced; the rest runs as it stands in the document: a token from client credentials,
a paged wildcard search for a case, and the hot-list hits of a plate.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lprctl.stack_client import StackClient

DOCS = Path(__file__).resolve().parent.parent / "docs" / "partner-api.md"
# The plate the example's pattern (7AB?12*) and its hits call (7ABC123) are about.
PLATE = "7ABC123"
GATEWAY_LINE = 'GATEWAY = "https://lpr.example.gov"'
CREDENTIALS_LINE = 'CLIENT_ID, CLIENT_SECRET = "...", "..."  # from our administrator'


def python_example() -> str:
    """The code block under the document's "Search with Python (httpx)" heading."""
    text = DOCS.read_text()
    section = text[text.index("## Search with Python (httpx)") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/partner-api.md: no Python example"
    return match.group(1)


@pytest.mark.slow
def test_the_partner_python_example_runs_as_documented(stack_client: StackClient) -> None:
    officer = stack_client.user("officer")
    camera = stack_client.camera()
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state,reason", f"{PLATE},CA,stolen"], format="csv")
    [read_id] = stack_client.post_plates(camera, [(PLATE, "CA")])
    stack_client.wait_hits(officer, PLATE)
    partner = stack_client.partner(["reads", "hits"])

    code = python_example()
    assert GATEWAY_LINE in code
    assert CREDENTIALS_LINE in code
    code = code.replace(GATEWAY_LINE, f"GATEWAY = {stack_client.gateway_url!r}").replace(
        CREDENTIALS_LINE,
        f"CLIENT_ID, CLIENT_SECRET = {partner.client_id!r}, {partner.client_secret!r}",
    )
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)  # the document's own code

    found = [r for r in namespace["results"] if r["read_id"] == read_id]
    assert [(r["plate"], r["camera_id"], r["match"]) for r in found] == [
        (PLATE, camera.id, "pattern")
    ]
    assert read_id in {hit["read_id"] for hit in namespace["hits"]}
    assert all(hit["plate"] == PLATE for hit in namespace["hits"])
