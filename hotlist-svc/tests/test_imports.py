"""Hot-list importers and the version diff."""

from __future__ import annotations

from datetime import date

import pytest

from lpr_hotlist.hotlists.models import HotListEntry
from lpr_hotlist.imports import (
    DEFAULT_ATTRIBUTES,
    FixedField,
    ImportFormat,
    MalformedFile,
    diff,
    parse_csv,
    parse_genetec_delimited,
    parse_genetec_fixed,
    parse_hotlist,
    parse_ncic,
)
from lpr_hotlist.imports.model import MAX_LENGTHS

NCIC_EXAMPLE = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK"


def test_ncic_example_line_parses_field_by_field() -> None:
    result = parse_ncic(NCIC_EXAMPLE.encode())
    assert result.rejections == ()
    [e] = result.entries
    assert e.line == 1
    assert e.list_code == "V"
    assert e.reason == "stolen vehicle"
    assert e.ncic_number == "V123456789"
    assert e.originating_agency == "LA0570200"
    assert e.effective_date == date(2019, 5, 9)
    assert e.plate == "AB123456"
    assert e.state == "CA"
    assert e.plate_year == 2009
    assert e.plate_type == "MC"
    assert e.vehicle_year == 2009
    assert e.vehicle_make == "YAMA"
    assert e.vehicle_model == "CYL"
    assert e.vehicle_style == "MC"
    assert e.vehicle_colour == "BLK"
    assert e.pattern is None
    assert e.expiry_date is None


def _ncic_line(
    code: str = "V", date_text: str = "20190509", plate: str = "AB123456", state: str = "CA"
) -> str:
    line = NCIC_EXAMPLE
    return code + line[1:19] + date_text + plate.ljust(10) + state + line[39:]


def test_ncic_bad_lines_are_rejected_with_line_and_reason() -> None:
    lines = [
        _ncic_line(),
        _ncic_line(code="Z"),
        _ncic_line(date_text="20191340"),
        _ncic_line(plate="AB#12"),
        _ncic_line(state="XX"),
        "V123 too short",
        "",
        _ncic_line(code="A", plate="7XYZ123", state="TX"),
    ]
    result = parse_ncic("\r\n".join(lines).encode())
    assert [e.plate for e in result.entries] == ["AB123456", "7XYZ123"]
    assert result.entries[1].line == 8
    assert result.entries[1].reason == "AMBER alert"
    reasons = {r.line: r.reason for r in result.rejections}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "list code 'Z'" in reasons[2]
    assert "20191340" in reasons[3]
    assert "'#'" in reasons[4]
    assert "'XX'" in reasons[5]
    assert "at least 39" in reasons[6]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no NCIC"),
        (b"plate,state\nABC123,CA\n", "no line could be read as NCIC"),
        (b"\xff\xfe\x00V1", "binary"),
        (b"\x00\x01binary", "no line could be read as NCIC.*NUL"),
        ("V1234é".encode("latin-1"), "not valid ascii"),
    ],
)
def test_ncic_wholly_malformed_file_raises(data: bytes, message: str) -> None:
    with pytest.raises(MalformedFile, match=message):
        parse_ncic(data)


def test_csv_with_default_column_names() -> None:
    data = (
        b"Plate,State,Reason,Case Number,Make,Color,Year,Expiry Date,Officer\n"
        b"abc-123,ca,Stolen,2024-001,HOND,BLU,2015,2025-12-31,Smith\n"
        b"AB?12*,,Partial plate,2024-002,,,,,\n"
        b"XYZ#9,CA,bad plate,,,,,,\n"
        b"QRS456,ZZ,bad state,,,,,,\n"
        b"QRS457,TX,bad date,,,,,13/45/2025,\n"
    )
    result = parse_csv(data)
    first, second = result.entries
    assert (first.plate, first.state, first.reason, first.case_number) == (
        "ABC123",
        "CA",
        "Stolen",
        "2024-001",
    )
    assert (first.vehicle_make, first.vehicle_colour, first.vehicle_year) == ("HOND", "BLU", 2015)
    assert first.expiry_date == date(2025, 12, 31)
    assert first.annotations == (("Officer", "Smith"),)
    assert (second.plate, second.pattern) == (None, "AB?12*")
    assert [(r.line, r.reason.split()[0]) for r in result.rejections] == [
        (4, "plate"),
        (5, "state"),
        (6, "expiry_date"),
    ]


def test_csv_with_header_mapping_and_semicolons() -> None:
    data = b"Kennzeichen;Land;Grund\nABC123;TX;felony\n"
    result = parse_csv(data, mapping={"plate": "Kennzeichen", "state": "Land", "reason": "Grund"})
    [e] = result.entries
    assert (e.plate, e.state, e.reason) == ("ABC123", "TX", "felony")


def test_csv_list_code_gives_ncic_meaning_when_no_reason() -> None:
    [e] = parse_csv(b"plate,list_code\nABC123,W\n").entries
    assert e.reason == "wanted"


@pytest.mark.parametrize(
    ("data", "mapping", "message"),
    [
        (b"name,colour\nBob,red\n", None, "no valid header"),
        (b"", None, "empty"),
        (b"Tag,State\nABC123,CA\n", {"plate": "Plate Number"}, "no column 'Plate Number'"),
        (b"plate\n#1\n", None, "no line could be read"),
    ],
)
def test_csv_wholly_malformed_file_raises(
    data: bytes, mapping: dict[str, str] | None, message: str
) -> None:
    with pytest.raises(MalformedFile, match=message):
        parse_csv(data, mapping=mapping)


def test_csv_mapping_of_unknown_field_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="fields we do not have"):
        parse_csv(b"plate\nABC123\n", mapping={"licence": "plate"})


def test_genetec_delimited_default_layout() -> None:
    data = b"Stolen;QC;DEF228;2024-01-31;2024-05-31\nW;CA;7ABC*;;\n;;;;\nStolen;QC;ABC123;2024-05-31;2024-01-31\n"
    result = parse_genetec_delimited(data)
    first, second = result.entries
    assert (first.list_code, first.state, first.plate) == ("Stolen", "QC", "DEF228")
    assert (first.effective_date, first.expiry_date) == (date(2024, 1, 31), date(2024, 5, 31))
    assert (second.pattern, second.reason) == ("7ABC*", "wanted")
    assert [r.line for r in result.rejections] == [3, 4]
    assert result.rejections[0].reason == "PlateNumber is blank"
    assert "before effective_date" in result.rejections[1].reason


def test_genetec_delimited_header_line_sets_the_order_and_keeps_custom_attributes() -> None:
    data = b"PlateNumber,PlateState,CarColor,Notes\nABC123,NY,RED,seen near school\n"
    [e] = parse_genetec_delimited(data, delimiter=",").entries
    assert (e.plate, e.state, e.vehicle_colour) == ("ABC123", "NY", "RED")
    assert e.annotations == (("Notes", "seen near school"),)


def test_genetec_fixed_width() -> None:
    layout = (
        FixedField("PlateNumber", 0, 8),
        FixedField("PlateState", 8, 2),
        FixedField("Make", 10, 4),
    )
    data = b"ABC123  CAFORD\nXYZ9    TX\n\nA#1     CA\n"
    result = parse_genetec_fixed(data, layout=layout)
    assert [(e.plate, e.state, e.vehicle_make) for e in result.entries] == [
        ("ABC123", "CA", "FORD"),
        ("XYZ9", "TX", None),
    ]
    assert [r.line for r in result.rejections] == [4]


def test_genetec_default_fixed_layout() -> None:
    line = "Stolen".ljust(20) + "ON" + "ABCD123".ljust(10) + "2024-01-01" + "2024-12-31"
    [e] = parse_genetec_fixed(line.encode()).entries
    assert (e.list_code, e.state, e.plate, e.expiry_date) == (
        "Stolen",
        "ON",
        "ABCD123",
        date(2024, 12, 31),
    )


def test_parse_hotlist_dispatches_by_format() -> None:
    assert parse_hotlist(NCIC_EXAMPLE.encode(), "ncic").format == "ncic"
    assert parse_hotlist(b"plate\nABC123\n", ImportFormat.CSV).entries[0].plate == "ABC123"
    with pytest.raises(ValueError, match="only to the csv"):
        parse_hotlist(NCIC_EXAMPLE.encode(), "ncic", mapping={"plate": "x"})
    with pytest.raises(ValueError, match="xml"):
        parse_hotlist(b"", "xml")


def test_diff_counts_added_removed_unchanged() -> None:
    old = parse_csv(b"plate,state\nABC123,CA\nXYZ789,TX\nAB*,\n").entries
    new = parse_csv(b"plate,state\nABC123,CA\nXYZ789,NV\nAB*,\nNEW1,CA\nNEW1,CA\n").entries
    result = diff(old, new)
    assert (result.added_count, result.removed_count, result.unchanged_count) == (2, 1, 2)
    assert ("XYZ789", "TX", None) in result.removed
    assert (None, None, "AB*") in result.unchanged


def test_max_lengths_are_the_widths_of_the_entry_columns() -> None:
    columns = HotListEntry.__table__.columns  # type: ignore[attr-defined]
    assert {name: columns[name].type.length for name in MAX_LENGTHS} == MAX_LENGTHS


GENETEC_WITH_CASE = (*DEFAULT_ATTRIBUTES, "CaseNumber")


@pytest.mark.parametrize(
    ("data", "format", "reason"),
    [
        (b"plate,case_number\nABC123," + b"C" * 65 + b"\nNEW111,x\n", "csv", "case_number has 65"),
        (b"plate,make\nABC123," + b"M" * 33 + b"\nNEW111,x\n", "csv", "vehicle_make has 33"),
        (b"plate,list_code\nABC123," + b"L" * 33 + b"\nNEW111,x\n", "csv", "list_code has 33"),
        (b"W;CA;ABC123;;;" + b"C" * 65 + b"\nW;CA;NEW111\n", "genetec", "case_number has 65"),
        (b"plate,Officer\nABC123,Sm\x00ith\nNEW111,x\n", "csv", "Officer holds the NUL"),
        (b"W;CA;ABC\x00123\nW;CA;NEW111\n", "genetec", "plate holds the NUL"),
    ],
    ids=[
        "csv-case-number",
        "csv-make",
        "csv-list-code",
        "genetec-case-number",
        "csv-nul-annotation",
        "genetec-nul-plate",
    ],
)
def test_a_line_that_cannot_be_stored_is_rejected_and_the_rest_read(
    data: bytes, format: str, reason: str
) -> None:
    if format == "csv":
        result = parse_csv(data)
    else:
        result = parse_genetec_delimited(data, attributes=GENETEC_WITH_CASE)
    assert [e.plate for e in result.entries] == ["NEW111"]
    [rejection] = result.rejections
    assert reason in rejection.reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (NCIC_EXAMPLE + "K" * 30, "vehicle_colour has 33"),
        (NCIC_EXAMPLE + "\x00", "line holds the NUL"),
    ],
    ids=["colour-over-32", "nul"],
)
def test_an_ncic_line_that_cannot_be_stored_is_rejected(line: str, reason: str) -> None:
    result = parse_ncic(f"{line}\n{_ncic_line(plate='NEW111')}\n".encode())
    assert [e.plate for e in result.entries] == ["NEW111"]
    [rejection] = result.rejections
    assert reason in rejection.reason


@pytest.mark.parametrize(
    ("data", "format"),
    [
        (b"plate,Offi\x00cer\nABC123,Smith\n", "csv"),
        (b"PlateNumber;No\x00tes\nABC123;x\n", "genetec_delimited"),
    ],
)
def test_a_header_holding_nul_refuses_the_file(data: bytes, format: str) -> None:
    with pytest.raises(MalformedFile, match=r"header .*NUL"):
        parse_hotlist(data, format)


UTF16_CSV = (
    "plate,state,reason\r\nABC123,CA,stolen\r\nXYZ789,NV,wanted \u2013 \u0410\u0411\u0412\r\n"
)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-16"])
@pytest.mark.parametrize("format", ["csv", "genetec_delimited", "ncic"])
def test_utf16_with_or_without_bom_is_read_as_text(codec: str, format: str) -> None:
    """Records systems export UTF-16LE without a BOM; its lines are not NUL-riddled."""
    text = {
        "csv": UTF16_CSV,
        "genetec_delimited": "W;CA;ABC123\r\nV;NV;XYZ789\r\n",
        "ncic": NCIC_EXAMPLE + "\r\n" + NCIC_EXAMPLE.replace("AB123456", "XYZ789  ") + "\r\n",
    }[format]
    result = parse_hotlist(text.encode(codec), format)
    assert result.rejections == ()
    assert len(result.entries) == 2


def test_utf16_without_bom_that_does_not_decode_is_refused_as_a_whole() -> None:
    data = UTF16_CSV.encode("utf-16-le")[:-1]  # odd length: its last character is cut
    with pytest.raises(MalformedFile, match=r"UTF-16-LE text without a byte-order mark.*re-export"):
        parse_csv(data)


def test_a_file_full_of_nul_bytes_is_refused_as_a_whole_not_line_by_line() -> None:
    data = "plate,state\r\nABC123,CA\r\n".encode("utf-32-le")  # NUL bytes at both parities
    with pytest.raises(MalformedFile, match=r"NUL bytes in .* re-export as UTF-8"):
        parse_csv(data)


def test_an_ncic_extract_in_utf16_must_still_be_ascii() -> None:
    with pytest.raises(MalformedFile, match="not valid ascii"):
        parse_ncic((NCIC_EXAMPLE + "é\r\n").encode("utf-16-le"))
