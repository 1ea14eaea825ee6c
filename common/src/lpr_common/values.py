"""Request value types bounded by what PostgreSQL and Python's datetime can hold.

A value past those bounds does not fail where it is parsed but later, in a query or in
date arithmetic, as a 500. These types refuse it while the request is validated, so the
422 names the field.

- :data:`StorableDatetime`: a time that stays within years 1..9999 once converted to UTC
  (``0001-01-01T00:00:00+14:00`` does not), with a day's margin for arithmetic.
- :data:`Int4` / :data:`Int8`: integers that fit PostgreSQL's ``integer`` / ``bigint``.
- :data:`Text`: a string without U+0000, for text that arrives other than in a JSON or
  form body (:mod:`lpr_common.nul` screens those), e.g. JSON inside a multipart field.
- :data:`EXACT_INTEGER_LIMIT`: the largest integer magnitude the access log records as a
  number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from lpr_common.nul import NUL_REASON

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
DATETIME_RANGE_REASON = "must be between 0001-01-02 and 9999-12-30 in UTC"


def storable_datetime(value: datetime) -> datetime:
    """``value`` unchanged if it is within :data:`EARLIEST` .. :data:`LATEST` in UTC.

    A naive value is compared as if it were UTC (whether naive values are accepted at
    all is the field's own rule).

    Raises:
        ValueError: it is not.
    """
    try:
        utc = value.astimezone(UTC) if value.utcoffset() is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(DATETIME_RANGE_REASON) from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(DATETIME_RANGE_REASON)
    return value


def no_nul(value: str) -> str:
    """``value`` unchanged if it holds no U+0000 (PostgreSQL cannot store it).

    Raises:
        ValueError: it does.
    """
    if "\x00" in value:
        raise ValueError(NUL_REASON)
    return value


StorableDatetime = Annotated[datetime, AfterValidator(storable_datetime)]
INT4_MAX = 2**31 - 1
Int4 = Annotated[int, Field(ge=-(2**31), le=INT4_MAX)]
INT8_MAX = 2**63 - 1
Int8 = Annotated[int, Field(ge=-(2**63), le=INT8_MAX)]
Text = Annotated[str, AfterValidator(no_nul)]

EXACT_INTEGER_LIMIT = 2**53
"""The largest magnitude up to which every integer is exactly an IEEE 754 double.

The access log hashes canonical JSON (RFC 8785), whose numbers are doubles: an integer
beyond this cannot be recorded exactly. audit-svc refuses such a number rather than log
it rounded, so a component sending one sends its digits as a string instead.
"""
