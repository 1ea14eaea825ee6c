"""Committed changes across replicas: LISTEN/NOTIFY index rebuilds and the resumable alert stream.

These tests commit (as production does), each under an agency of its own so that no other
test sees their lists or alerts.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI

from lpr_hotlist.alerts.stream import StreamFilter, alert_events
from lpr_hotlist.app import create_app
from lpr_hotlist.hotlists import repository
from lpr_hotlist.settings import Settings
from lpr_hotlist.testing import Api, AuditLog, ncic_line, use_audit_log
from lprctl.pytest_plugin import app_client


def unique_agency() -> str:
    return "ZZ" + secrets.token_hex(4).upper()[:7]


async def import_list(
    api: Api, agency: str, lines: list[str], name: str = "NCIC"
) -> dict[str, Any]:
    created = await api.admin(
        "POST",
        "/v1/hotlists",
        agency=agency,
        json={"name": name, "source": "NCIC", "category": "stolen vehicle"},
    )
    assert created.status_code == 201, created.text
    return await import_version(api, agency, created.json()["id"], lines)


async def import_version(api: Api, agency: str, list_id: str, lines: list[str]) -> dict[str, Any]:
    """Publish a new version of an NCIC list; its import report."""
    response = await api.admin(
        "POST",
        f"/v1/hotlists/{list_id}/imports",
        agency=agency,
        files={"file": ("ncic.txt", "\n".join(lines).encode(), "text/plain")},
        data={"format": "ncic"},
    )
    assert response.status_code == 201, response.text
    report: dict[str, Any] = response.json()
    return report


@asynccontextmanager
async def two_replicas() -> AsyncIterator[tuple[Api, FastAPI, Api]]:
    """Two hotlist-svc replicas on one database: one imports, one matches (its app too).

    The matcher's index is checked only hourly: it rebuilds on change notifications alone.
    """
    settings = Settings(hotlist_index_check_s=3600)
    writer, matcher = create_app(settings), create_app(settings)
    async with app_client(writer) as writer_client, app_client(matcher) as matcher_client:
        use_audit_log(writer, AuditLog())
        use_audit_log(matcher, AuditLog())
        yield Api(writer_client), matcher, Api(matcher_client)


async def post_read(
    api: Api,
    agency: str,
    plate: str,
    unit_id: str = "unit-1",
    *,
    read_id: str | None = None,
    track: tuple[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """Match one read; ``track`` (track id, the pass's read ids so far) makes it a frame."""
    read_id = read_id or str(uuid4())
    plate_body: dict[str, Any] = {"index": 0, "text": plate, "state": "CA"}
    if track is not None:
        track_id, read_ids = track
        read_ids.append(read_id)
        plate_body.update(track_id=track_id, track_read_ids=list(read_ids))
    response = await api.call(
        "POST",
        "/internal/v1/matches",
        service=True,
        headers={"Idempotency-Key": read_id},
        json={
            "read_id": read_id,
            "agency": agency,
            "unit_id": unit_id,
            "captured_at": datetime.now(UTC).isoformat(),
            "latitude": 38.5,
            "longitude": -121.4,
            "plates": [plate_body],
        },
    )
    assert response.status_code == 200, response.text
    alerts: list[dict[str, Any]] = response.json()["alerts"]
    return alerts


def hold_index(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a replica's index at its generation, as while rebuilding a large list."""

    async def still_rebuilding() -> None:
        return None

    monkeypatch.setattr(app.state.live_index, "rebuild", still_rebuilding)


def parse_sse(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            events.append(fields)
    return events


async def test_an_import_on_one_replica_rebuilds_the_other(service_env: dict[str, str]) -> None:
    agency = unique_agency()
    # No periodic check during the test: only the NOTIFY can make replica B rebuild.
    settings = Settings(hotlist_index_check_s=3600)
    replica_a, replica_b = create_app(settings), create_app(settings)
    async with app_client(replica_a) as client_a, app_client(replica_b) as client_b:
        use_audit_log(replica_a, AuditLog())
        use_audit_log(replica_b, AuditLog())
        assert await post_read(Api(client_b), agency, "NTF123") == []
        report = await import_list(Api(client_a), agency, [ncic_line("V", "NTF123")])
        state = await replica_b.state.live_index.wait_for_generation(report["generation"], 10)
        assert state.generation >= report["generation"]
        [alert] = await post_read(Api(client_b), agency, "NTF1Z3")
        assert alert["explanation"] == "read NTF1Z3 matched NTF123 (Z≈2)"


async def test_stream_resumes_after_last_event_id(service_env: dict[str, str]) -> None:
    agency = unique_agency()
    app = create_app(Settings(hotlist_stream_poll_s=0.2))
    async with app_client(app) as client:
        use_audit_log(app, AuditLog())
        api = Api(client)
        await import_list(api, agency, [ncic_line("V", "SSE111"), ncic_line("V", "SSE222")])
        await app.state.live_index.refresh_if_stale()
        [first] = await post_read(api, agency, "SSE111")
        [second] = await post_read(api, agency, "SSE222", unit_id="unit-2")
        [third] = await post_read(api, agency, "SSE111", unit_id="unit-2")

        everything = parse_sse(
            (
                await api.call(
                    "GET",
                    "/v1/alerts/stream",
                    agency=agency,
                    params={"last_event_id": 0, "limit": 3},
                )
            ).text
        )
        assert [e["data"]["alert"]["id"] for e in everything] == [
            first["alert_id"],
            second["alert_id"],
            third["alert_id"],
        ]
        assert {e["event"] for e in everything} == {"alert.created"}
        first_id = everything[0]["id"]

        # A client that saw only the first event reconnects and gets the rest, in order.
        resumed = parse_sse(
            (
                await api.call(
                    "GET",
                    "/v1/alerts/stream",
                    agency=agency,
                    params={"limit": 2},
                    headers={"Last-Event-ID": first_id},
                )
            ).text
        )
        assert [e["id"] for e in resumed] == [e["id"] for e in everything[1:]]
        assert int(resumed[0]["id"]) > int(first_id)

        # Transitions are events too; a unit filter keeps only that unit's alerts.
        await api.call("POST", f"/v1/alerts/{third['alert_id']}/acknowledge", agency=agency)
        unit_2 = parse_sse(
            (
                await api.call(
                    "GET",
                    "/v1/alerts/stream",
                    agency=agency,
                    params={"unit_id": "unit-2", "limit": 3},
                    headers={"Last-Event-ID": "0"},
                )
            ).text
        )
        assert [(e["event"], e["data"]["alert"]["id"]) for e in unit_2] == [
            ("alert.created", second["alert_id"]),
            ("alert.created", third["alert_id"]),
            ("alert.transition", third["alert_id"]),
        ]
        assert unit_2[2]["data"]["to_status"] == "acknowledged"

        other = await api.call("GET", "/v1/alerts/stream", agency=agency, params={"bbox": "1,2,3"})
        assert other.status_code == 422


async def test_a_later_frame_of_a_pass_is_streamed_as_an_update_and_resumable(
    service_env: dict[str, str],
) -> None:
    agency = unique_agency()
    app = create_app(Settings(hotlist_stream_poll_s=0.2))
    async with app_client(app) as client:
        use_audit_log(app, AuditLog())
        api = Api(client)
        await import_list(api, agency, [ncic_line("V", "PAS777")])
        await app.state.live_index.refresh_if_stale()
        track_id, read_ids = str(uuid4()), list[str]()

        async def stream(after: str, limit: int) -> list[dict[str, Any]]:
            response = await api.call(
                "GET",
                "/v1/alerts/stream",
                agency=agency,
                params={"limit": limit},
                headers={"Last-Event-ID": after},
            )
            return parse_sse(response.text)

        [alert] = await post_read(api, agency, "PAS777", track=(track_id, read_ids))
        [created] = await stream("0", 1)
        assert created["event"] == "alert.created"
        # An officer is working the alert when the pass grows: the update keeps the status.
        await api.call("POST", f"/v1/alerts/{alert['alert_id']}/acknowledge", agency=agency)
        [same] = await post_read(api, agency, "PAS777", track=(track_id, read_ids))
        assert same["alert_id"] == alert["alert_id"]
        [same] = await post_read(api, agency, "PAS777", track=(track_id, read_ids))

        # A client that saw the alert raised reconnects: the transition, then both frames.
        after_created = await stream(created["id"], 3)
        assert [e["event"] for e in after_created] == [
            "alert.transition",
            "alert.updated",
            "alert.updated",
        ]
        assert [int(e["id"]) for e in after_created] == sorted(int(e["id"]) for e in after_created)
        first_update, second_update = after_created[1:]
        assert first_update["data"]["alert"]["id"] == alert["alert_id"]
        assert first_update["data"]["to_status"] == "acknowledged"
        # Each update carries the members as they were then; the alert as it is now.
        assert first_update["data"]["details"]["member_read_ids"] == read_ids[:2]
        assert first_update["data"]["details"]["read_id"] == read_ids[1]
        assert first_update["data"]["details"]["fused_plate"] == "PAS777"
        assert first_update["data"]["details"]["track_id"] == track_id
        assert second_update["data"]["details"]["member_read_ids"] == read_ids
        assert second_update["data"]["alert"]["member_read_ids"] == read_ids
        # Resuming after the first update yields only the second.
        resumed = await stream(first_update["id"], 1)
        assert [e["id"] for e in resumed] == [second_update["id"]]


async def test_a_waiting_stream_is_woken_by_a_commit_on_another_replica(
    service_env: dict[str, str],
) -> None:
    agency = unique_agency()
    settings = Settings(hotlist_index_check_s=3600)
    watcher, writer = create_app(settings), create_app(settings)
    async with app_client(watcher), app_client(writer) as client:
        use_audit_log(writer, AuditLog())
        api = Api(client)
        report = await import_list(api, agency, [ncic_line("V", "WAKE12")])
        await writer.state.live_index.wait_for_generation(report["generation"], 10)
        # Poll only every minute: the event must arrive through LISTEN/NOTIFY.
        stream = alert_events(
            watcher.state.sessionmaker,
            watcher.state.alert_bus,
            StreamFilter(agency=agency),
            after=0,
            limit=1,
            poll_s=60,
        )

        async def first_event() -> dict[str, Any]:
            return await anext(stream)

        waiting = asyncio.create_task(first_event())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        [alert] = await post_read(api, agency, "WAKE12")
        event = await asyncio.wait_for(waiting, timeout=5)
        assert json.loads(event["data"])["alert"]["id"] == alert["alert_id"]
        await stream.aclose()


async def test_sync_and_shift_check_give_the_delta(service_env: dict[str, str]) -> None:
    agency = unique_agency()
    app = create_app(Settings())
    async with app_client(app) as client:
        use_audit_log(app, AuditLog())
        api = Api(client)
        first = await import_list(api, agency, [ncic_line("V", "SYN111"), ncic_line("V", "SYN222")])
        cursor = (await api.call("GET", "/v1/hotlists/sync", agency=agency)).json()["cursor"]
        list_id = first["list_id"]
        await import_version(
            api, agency, list_id, [ncic_line("V", "SYN111"), ncic_line("V", "SYN333")]
        )

        sync = (
            await api.call("GET", "/v1/hotlists/sync", agency=agency, params={"since": cursor})
        ).json()
        [delta] = sync["lists"]
        assert (delta["current_version"], delta["full"]) == (2, False)
        assert [e["plate"] for e in delta["added"]] == ["SYN333"]
        assert [r["plate"] for r in delta["removed"]] == ["SYN222"]
        again = (
            await api.call(
                "GET", "/v1/hotlists/sync", agency=agency, params={"since": sync["cursor"]}
            )
        ).json()
        assert again["lists"] == []

        stale = await api.call(
            "POST",
            "/v1/shift-checks",
            agency=agency,
            json={"unit_id": "u1", "versions": {list_id: 1}},
        )
        body = stale.json()
        assert (body["current"], body["stale_lists"][0]["current_version"]) == (False, 2)
        assert [e["plate"] for e in body["lists"][0]["added"]] == ["SYN333"]
        current = await api.call(
            "POST",
            "/v1/shift-checks",
            agency=agency,
            json={"unit_id": "u1", "versions": {list_id: 2}},
        )
        assert current.json()["current"] is True
        unknown = await api.call(
            "POST", "/v1/shift-checks", agency=agency, json={"versions": {str(uuid4()): 1}}
        )
        assert unknown.status_code == 422
        assert unknown.json()["errors"][0]["field"].startswith("versions.")


async def test_a_shift_check_cursor_does_not_skip_a_version_published_meanwhile(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import committed while a shift check runs is delivered by sync from its cursor.

    The check may answer "current" at the old version (that was true when it read the
    lists), but its cursor must then not cover the import either, or the unit would drive
    its shift with a stale hot list that no sync ever brings up to date (IACP C.3).
    """
    agency = unique_agency()
    app = create_app(Settings(hotlist_index_check_s=3600))
    async with app_client(app) as client:
        use_audit_log(app, AuditLog())
        api = Api(client)
        first = await import_list(api, agency, [ncic_line("V", "CUR111")])
        list_id = first["list_id"]
        assert first["version"] == 1

        real_lists_of = repository.lists_of
        published: dict[str, Any] = {}

        async def lists_of_then_a_concurrent_import(session: Any, of_agency: str) -> Any:
            lists = await real_lists_of(session, of_agency)
            if of_agency == agency and not published:
                # Another administrator's import commits while the shift check runs.
                published.update(
                    await import_version(
                        api, agency, list_id, [ncic_line("V", "CUR111"), ncic_line("V", "CUR222")]
                    )
                )
            return lists

        monkeypatch.setattr(repository, "lists_of", lists_of_then_a_concurrent_import)
        check = await api.call(
            "POST",
            "/v1/shift-checks",
            agency=agency,
            json={"unit_id": "u-race", "versions": {list_id: 1}},
        )
        monkeypatch.setattr(repository, "lists_of", real_lists_of)
        assert check.status_code == 201, check.text
        assert published["version"] == 2
        body = check.json()
        assert body["current"] is True
        sync = (
            await api.call(
                "GET", "/v1/hotlists/sync", agency=agency, params={"since": body["cursor"]}
            )
        ).json()
        delivered = {d["list_id"]: d["current_version"] for d in sync["lists"]}
        assert delivered.get(list_id) == 2, (
            f"shift check said current at v1 with cursor {body['cursor']}; import v2 has "
            f"generation {published['generation']}; sync(since=cursor) delivered {delivered}"
        )


async def test_a_stale_index_does_not_alert_on_an_entry_its_list_no_longer_holds(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until a replica's index is rebuilt, an entry an import replaced raises no alert.

    Entries of earlier versions stay stored, so the match must check that the list's
    current version still holds the entry, or officers are sent after a vehicle that is no
    longer wanted (the car was recovered).
    """
    agency = unique_agency()
    async with two_replicas() as (writes, matcher, reads):
        first = await import_list(writes, agency, [ncic_line("V", "GONE11")])
        stale = await matcher.state.live_index.wait_for_generation(first["generation"], 10)
        hold_index(matcher, monkeypatch)
        replaced = await import_version(
            writes, agency, first["list_id"], [ncic_line("V", "OTHER2")]
        )
        assert replaced["removed"] == 1
        alerts = await post_read(reads, agency, "GONE11")
        assert alerts == [], [a["explanation"] for a in alerts]
        assert matcher.state.live_index.state is stale


async def test_a_stale_index_still_alerts_on_a_manual_entry_the_list_kept(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every version stores its entries anew: a stale index's hit counts as the current one.

    An officer removes one of two manual entries. Until the matcher's index is rebuilt the
    removed plate raises no alert, and the kept plate still does, citing the entry of the
    list's current version.
    """
    agency = unique_agency()
    async with two_replicas() as (writes, matcher, reads):
        created = await writes.admin(
            "POST",
            "/v1/hotlists",
            agency=agency,
            json={"name": "Officer adds", "source": "manual", "category": "stolen vehicle"},
        )
        assert created.status_code == 201, created.text
        list_id = created.json()["id"]
        added: dict[str, dict[str, Any]] = {}
        for plate in ("KEPT11", "RMVD22"):
            response = await writes.call(
                "POST",
                f"/v1/hotlists/{list_id}/entries",
                agency=agency,
                json={"plate": plate, "state": "CA", "reason": "seen leaving a robbery"},
            )
            assert response.status_code == 201, response.text
            added[plate] = response.json()
        generation = (await writes.call("GET", "/v1/hotlists/config", agency=agency)).json()[
            "generation"
        ]
        stale = await matcher.state.live_index.wait_for_generation(generation, 10)
        hold_index(matcher, monkeypatch)
        removed = await writes.admin(
            "DELETE",
            f"/v1/hotlists/{list_id}/entries/{added['RMVD22']['id']}",
            agency=agency,
            params={"reason": "recovered by owner"},
        )
        assert removed.status_code == 200, removed.text
        assert removed.json()["version"] == 3

        assert await post_read(reads, agency, "RMVD22") == []
        [alert] = await post_read(reads, agency, "KEPT11")
        [current] = (
            await writes.call("GET", f"/v1/hotlists/{list_id}/entries", agency=agency)
        ).json()["entries"]
        assert (current["plate"], alert["entry_id"]) == ("KEPT11", current["id"])
        shown = (await reads.call("GET", f"/v1/alerts/{alert['alert_id']}", agency=agency)).json()
        assert (shown["version_id"], shown["entry"]["list_version"]) == (current["version_id"], 3)
        assert matcher.state.live_index.state is stale
