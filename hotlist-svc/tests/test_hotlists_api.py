"""Hot lists over the API: imports as versions, atomic replacement, manual entries (C.6)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from lpr_hotlist.testing import AGENCY, Api, AuditLog, ncic_line


async def create_list(api: Api, name: str, source: str = "NCIC", **fields: Any) -> dict[str, Any]:
    response = await api.admin(
        "POST",
        "/v1/hotlists",
        json={"name": name, "source": source, "category": "stolen vehicle", **fields},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def upload(
    api: Api, list_id: str, data: bytes, format: str, name: str = "list.txt", **form: str
) -> Any:
    return await api.admin(
        "POST",
        f"/v1/hotlists/{list_id}/imports",
        files={"file": (name, data, "text/plain")},
        data={"format": format, **form},
    )


async def test_ncic_import_creates_version_with_provenance_and_report(api: Api) -> None:
    hot_list = await create_list(api, "NCIC stolen")
    data = "\n".join(
        [ncic_line("V", "ABC123"), ncic_line("W", "XYZ789", "TX"), ncic_line("Z", "BAD1")]
    ).encode()
    response = await upload(api, hot_list["id"], data, "ncic", name="ncic-2024-01-05.txt")
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["version"], report["added"], report["removed"], report["rejected"]) == (
        1,
        2,
        0,
        1,
    )
    assert report["rejections"][0]["line"] == 3
    assert "list code 'Z'" in report["rejections"][0]["reason"]
    assert report["sha256"] == hashlib.sha256(data).hexdigest()

    [version] = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/versions")).json()
    assert version["created_by"] == "admin-1"
    assert version["file_name"] == "ncic-2024-01-05.txt"
    assert version["sha256"] == report["sha256"]
    entries = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()
    first = entries["entries"][0]
    assert (first["plate"], first["state"], first["reason"]) == ("ABC123", "CA", "stolen vehicle")
    assert (first["vehicle_year"], first["vehicle_make"]) == (2015, "HOND")
    assert first["added_by"] == "admin-1"


async def test_csv_import_replaces_the_list_as_a_new_version_and_keeps_the_old(api: Api) -> None:
    hot_list = await create_list(api, "Local wanted", source="DMV")
    list_id = hot_list["id"]
    first = await upload(
        api, list_id, b"plate,state,reason,Officer\nABC123,CA,stolen,Smith\nOLD999,CA,old,\n", "csv"
    )
    assert first.status_code == 201, first.text
    second = await upload(
        api,
        list_id,
        b"Tag;Land;Why\nABC123;CA;stolen\nNEW111;NV;new\n",
        "csv",
        mapping=json.dumps({"plate": "Tag", "state": "Land", "reason": "Why"}),
    )
    assert second.status_code == 201, second.text
    report = second.json()
    assert (report["version"], report["added"], report["removed"], report["unchanged"]) == (
        2,
        1,
        1,
        1,
    )

    current = (await api.call("GET", f"/v1/hotlists/{list_id}/entries")).json()
    assert sorted(e["plate"] for e in current["entries"]) == ["ABC123", "NEW111"]
    previous = (await api.call("GET", f"/v1/hotlists/{list_id}/versions/1/entries")).json()
    assert sorted(e["plate"] for e in previous["entries"]) == ["ABC123", "OLD999"]
    assert [e["annotations"] for e in previous["entries"]] == [{"Officer": "Smith"}, None]
    shown = (await api.call("GET", f"/v1/hotlists/{list_id}")).json()
    assert shown["current_version"] == 2


async def test_malformed_file_changes_nothing(api: Api) -> None:
    hot_list = await create_list(api, "NICB", source="NICB")
    list_id = hot_list["id"]
    assert (
        await upload(api, list_id, ncic_line("V", "KEEP12").encode(), "ncic")
    ).status_code == 201
    for data, format, field in [
        (b"name,colour\nBob,red\n", "csv", "file"),
        (b"\x00\x01binary", "ncic", "file"),
        (b"plate\nABC123\n", "xml", "format"),
    ]:
        response = await upload(api, list_id, data, format)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    bad_mapping = await upload(api, list_id, b"plate\nA1\n", "csv", mapping="{not json")
    assert bad_mapping.status_code == 422
    assert bad_mapping.json()["errors"][0]["field"] == "mapping"
    versions = (await api.call("GET", f"/v1/hotlists/{list_id}/versions")).json()
    assert [v["number"] for v in versions] == [1]
    entries = (await api.call("GET", f"/v1/hotlists/{list_id}/entries")).json()["entries"]
    assert [e["plate"] for e in entries] == ["KEEP12"]


async def test_import_needs_an_administrator(api: Api) -> None:
    hot_list = await create_list(api, "Amber", source="AMBER")
    response = await api.call(
        "POST",
        f"/v1/hotlists/{hot_list['id']}/imports",
        files={"file": ("a.txt", b"plate\nA1\n", "text/plain")},
        data={"format": "csv"},
    )
    assert response.status_code == 403
    assert "administrator" in response.json()["detail"]


async def test_other_agencies_do_not_see_a_list(api: Api) -> None:
    hot_list = await create_list(api, "Private")
    response = await api.call("GET", f"/v1/hotlists/{hot_list['id']}", agency="NV0020000")
    assert response.status_code == 404


async def test_manual_entry_needs_a_reason_and_gets_the_default_expiry(api: Api) -> None:
    hot_list = await create_list(api, "Officer adds", source="manual")
    path = f"/v1/hotlists/{hot_list['id']}/entries"
    missing = await api.call("POST", path, json={"plate": "ABC123"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "reason"
    blank = await api.call("POST", path, json={"plate": "ABC123", "reason": "  "})
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["field"] == "reason"

    created = await api.call(
        "POST", path, json={"plate": "abc-123", "state": "ca", "reason": "seen at robbery"}
    )
    assert created.status_code == 201, created.text
    entry = created.json()
    assert (entry["plate"], entry["state"], entry["added_by"]) == ("ABC123", "CA", "officer-1")
    config = (await api.call("GET", "/v1/hotlists/config")).json()
    expires = datetime.fromisoformat(entry["expires_at"])
    expected = datetime.now(UTC) + timedelta(days=config["default_manual_expiry_days"])
    assert abs((expires - expected).total_seconds()) < 60
    assert entry["version"] == 1
    current = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()
    assert [(e["plate"], e["reason"]) for e in current["entries"]] == [
        ("ABC123", "seen at robbery")
    ]


async def test_manual_entry_refuses_bad_plates_states_and_dates(api: Api) -> None:
    hot_list = await create_list(api, "Officer adds 2", source="manual")
    path = f"/v1/hotlists/{hot_list['id']}/entries"
    cases = [
        ({"plate": "AB#123", "reason": "why not"}, "plate", "'#'"),
        ({"plate": "ÄBC123", "reason": "why not"}, "plate", "outside A-Z 0-9"),
        ({"plate": "ABC123", "state": "XX", "reason": "why not"}, "state", "'XX'"),
        ({"pattern": "**", "reason": "why not"}, "pattern", ""),
        (
            {"plate": "ABC123", "reason": "why not", "expires_at": "2020-01-01T00:00:00Z"},
            "expires_at",
            "future",
        ),
    ]
    for body, field, text in cases:
        response = await api.call("POST", path, json=body)
        assert response.status_code == 422, body
        error = response.json()["errors"][0]
        assert error["field"] == field
        assert text in error["reason"]
    listed = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/manual-entries")).json()
    assert listed == []


async def test_manual_entries_go_to_manual_lists_and_removal_needs_a_reason(api: Api) -> None:
    ncic = await create_list(api, "NCIC 2")
    refused = await api.call(
        "POST", f"/v1/hotlists/{ncic['id']}/entries", json={"plate": "A1", "reason": "because"}
    )
    assert refused.status_code == 409
    assert refused.json()["rule"].startswith("C.6")

    manual = await create_list(api, "Officer adds 3", source="manual")
    not_imported = await upload(api, manual["id"], b"plate\nABC123\n", "csv")
    assert not_imported.status_code == 409
    assert not_imported.json()["rule"].startswith("C.6")
    entry = (
        await api.call(
            "POST",
            f"/v1/hotlists/{manual['id']}/entries",
            json={"plate": "RMV123", "reason": "stolen"},
        )
    ).json()
    path = f"/v1/hotlists/{manual['id']}/entries/{entry['id']}"
    assert (await api.admin("DELETE", path, params={"reason": ""})).status_code == 422
    removed = await api.admin("DELETE", path, params={"reason": "recovered by owner"})
    assert removed.status_code == 200, removed.text
    assert removed.json()["removal_reason"] == "recovered by owner"
    assert removed.json()["version"] == 2
    current = (await api.call("GET", f"/v1/hotlists/{manual['id']}/entries")).json()
    assert current["entries"] == []


async def test_every_change_is_audited(api: Api, audit_log: AuditLog) -> None:
    hot_list = await create_list(api, "Audited")
    await upload(api, hot_list["id"], ncic_line("V", "AUD123").encode(), "ncic")
    types = [e["event_type"] for e in audit_log.events]
    assert types == ["hotlist.created", "hotlist.imported"]
    imported = audit_log.events[1]
    assert imported["subject_id"] == "admin-1"
    assert imported["agency"] == AGENCY
    assert imported["details"]["added"] == 1


async def test_config_validates_ocr_classes(api: Api) -> None:
    response = await api.admin("PUT", "/v1/hotlists/config", json={"ocr_classes": ["0O", "O1"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "ocr_classes"
    officer = await api.call("PUT", "/v1/hotlists/config", json={"open_alert_minutes": 5})
    assert officer.status_code == 403
