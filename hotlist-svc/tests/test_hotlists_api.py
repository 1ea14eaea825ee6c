"""Hot lists over the API: imports as versions, atomic replacement, manual entries (C.6)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

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


async def test_a_utf16_export_without_bom_imports_like_utf8(api: Api) -> None:
    hot_list = await create_list(api, "Records export", source="DMV")
    text = "plate,state,reason\r\nABC123,CA,stolen\r\nXYZ789,NV,wanted\r\n"
    response = await upload(api, hot_list["id"], text.encode("utf-16-le"), "csv")
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["entry_count"], report["rejected"]) == (2, 0)
    entries = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()["entries"]
    assert sorted(e["plate"] for e in entries) == ["ABC123", "XYZ789"]


async def test_a_broken_utf16_export_is_refused_once_and_changes_nothing(api: Api) -> None:
    hot_list = await create_list(api, "Records export 2", source="DMV")
    list_id = hot_list["id"]
    assert (await upload(api, list_id, b"plate\nKEEP12\n", "csv")).status_code == 201
    text = "plate,state\r\nABC123,CA\r\nXYZ789,NV\r\n"
    response = await upload(api, list_id, text.encode("utf-16-le")[:-1], "csv")
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "file"
    assert "without a byte-order mark" in error["reason"]
    assert "re-export as UTF-8 or with a byte-order mark" in error["reason"]
    versions = (await api.call("GET", f"/v1/hotlists/{list_id}/versions")).json()
    assert [v["number"] for v in versions] == [1]
    entries = (await api.call("GET", f"/v1/hotlists/{list_id}/entries")).json()["entries"]
    assert [e["plate"] for e in entries] == ["KEEP12"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"ABC123,CA," + b"C" * 65 + b",", "case_number has 65 characters; at most 64"),
        (b"ABC123,CA,," + b"M" * 33, "vehicle_make has 33 characters; at most 32"),
        (b"ABC123,CA,PD\x00-1,", "case_number holds the NUL character"),
    ],
    ids=["case-number-over-64", "make-over-32", "nul"],
)
async def test_a_line_that_cannot_be_stored_is_rejected_and_the_rest_imports(
    api: Api, line: bytes, reason: str
) -> None:
    hot_list = await create_list(api, "Local stored", source="DMV")
    data = b"plate,state,case_number,vehicle_make\n" + line + b"\nNEW111,CA,PD-2,FORD\n"
    response = await upload(api, hot_list["id"], data, "csv")
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["entry_count"], report["rejected"]) == (1, 1)
    [rejection] = report["rejections"]
    assert rejection["line"] == 2
    assert reason in rejection["reason"]
    entries = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()["entries"]
    assert [e["plate"] for e in entries] == ["NEW111"]


async def test_an_expiry_date_of_9999_12_31_means_the_entry_never_expires(api: Api) -> None:
    hot_list = await create_list(api, "Local never", source="DMV")
    data = b"plate,state,expiry_date\nNEVER1,CA,9999-12-31\nLAST1,CA,9999-12-30\n"
    response = await upload(api, hot_list["id"], data, "csv")
    assert response.status_code == 201, response.text
    assert response.json()["rejected"] == 0
    entries = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()["entries"]
    assert {e["plate"]: e["expires_at"] for e in entries} == {
        "NEVER1": None,
        "LAST1": "9999-12-31T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("format", "name", "form", "field"),
    [
        ("csv", "f" * 252 + ".csv", {}, "file"),
        ("csv\x00", "list.csv", {}, "format"),
        ("csv", "list.csv", {"mapping": '{"plate": "pl\x00ate"}'}, "mapping"),
        ("csv", "list.csv", {"delimiter": "\x00"}, "delimiter"),
    ],
    ids=["file-name-over-255", "nul-format", "nul-mapping", "nul-delimiter"],
)
async def test_an_import_form_field_that_cannot_be_stored_is_named_and_changes_nothing(
    api: Api, format: str, name: str, form: dict[str, str], field: str
) -> None:
    hot_list = await create_list(api, "Local form", source="DMV")
    assert (await upload(api, hot_list["id"], b"plate\nKEEP12\n", "csv")).status_code == 201
    response = await upload(api, hot_list["id"], b"plate\nNEW111\n", format, name, **form)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    entries = (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/entries")).json()["entries"]
    assert [e["plate"] for e in entries] == ["KEEP12"]


async def test_an_import_file_name_holding_nul_is_named(api: Api) -> None:
    hot_list = await create_list(api, "Local NUL name", source="DMV")
    # httpx escapes a NUL in a file name; a client that does not sends it as it is.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="format"\r\n\r\ncsv\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.csv"\r\n'
        b"Content-Type: text/plain\r\n\r\nplate\nNEW111\n\r\n--b--\r\n"
    )
    response = await api.admin(
        "POST",
        f"/v1/hotlists/{hot_list['id']}/imports",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "file"
    assert (await api.call("GET", f"/v1/hotlists/{hot_list['id']}/versions")).json() == []


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
        (
            {"plate": "ABC123", "reason": "why not", "effective_at": "2030-01-01T00:00:00"},
            "effective_at",
            "timezone",
        ),
        (
            {"plate": "ABC123", "reason": "why not", "expires_at": "9999-12-31T23:59:59-14:00"},
            "expires_at",
            "9999-12-30",
        ),
        (
            {"plate": "ABC123", "reason": "why not", "effective_at": "0001-01-01T00:00:00+14:00"},
            "effective_at",
            "0001-01-02",
        ),
        ({"plate": "ABC123", "reason": "why\x00not"}, "reason", "NUL"),
        ({"plate": "ABC123", "reason": "why not", "case_number": "PD\x00"}, "case_number", "NUL"),
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
    nul = await api.admin("DELETE", path, params={"reason": "recovered\x00"})
    assert (nul.status_code, nul.json()["errors"][0]["field"]) == (422, "reason")
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


async def test_list_text_holding_nul_is_named(api: Api) -> None:
    created = await api.admin(
        "POST", "/v1/hotlists", json={"name": "NCIC\x00", "source": "NCIC", "category": "x"}
    )
    hot_list = await create_list(api, "NCIC nul")
    changed = await api.admin(
        "PATCH", f"/v1/hotlists/{hot_list['id']}", json={"description": "\x00"}
    )
    assert [(r.status_code, r.json()["errors"][0]["field"]) for r in (created, changed)] == [
        (422, "name"),
        (422, "description"),
    ]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/hotlists/{list_id}/versions/1099511627776/entries", {}, "number"),
        ("/v1/hotlists/{list_id}/entries", {"offset": 2**63}, "offset"),
        ("/v1/hotlists/{list_id}/entries", {"offset": 10_000_001}, "offset"),
        ("/v1/hotlists/sync", {"since": 2**63}, "since"),
    ],
    ids=["version-over-int", "offset-over-bigint", "offset-over-bound", "sync-over-bigint"],
)
async def test_out_of_range_numbers_in_a_query_are_named(
    api: Api, path: str, params: dict[str, Any], field: str
) -> None:
    hot_list = await create_list(api, "NCIC range")
    response = await api.call("GET", path.format(list_id=hot_list["id"]), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"versions": {"{list_id}": 2**40}}, "versions.{list_id}"),
        ({"unit_id": "u\x00", "versions": {}}, "unit_id"),
    ],
    ids=["version-over-int", "nul-unit"],
)
async def test_shift_check_bad_values_are_named_and_not_recorded(
    api: Api, body: dict[str, Any], field: str
) -> None:
    hot_list = await create_list(api, "NCIC shift")
    await upload(api, hot_list["id"], ncic_line("V", "KEEP12").encode(), "ncic")
    filled = json.loads(json.dumps(body).replace("{list_id}", hot_list["id"]))
    response = await api.call("POST", "/v1/shift-checks", json=filled)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field.format(list_id=hot_list["id"])
    assert (await api.call("GET", "/v1/shift-checks")).json() == []
