"""Query parameters of the audit routes, bounded so a bad value is refused by its name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator

from lpr_audit.chain import EXACT_INTEGER_LIMIT
from lpr_common.errors import InvalidInput
from lpr_common.values import EARLIEST, StorableDatetime


def _utc(moment: datetime) -> datetime:
    # Without an offset a time is read as UTC, the log's own clock. Left naive it could not
    # be compared with one that has an offset, and PostgreSQL would read it in its own zone.
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment


QueryTime = Annotated[StorableDatetime, AfterValidator(_utc)]
"""A time bound of a query: within years 1..9999 in UTC, and UTC when it has no offset."""

# A seq the caller names is recorded in the query's own ``audit.access`` event, whose
# canonical JSON holds integers exactly up to 2**53: far beyond any chain, within bigint.
SEQ_LIMIT: Final = EXACT_INTEGER_LIMIT


def reporting_period(
    start: datetime | None, end: datetime | None, *, default: timedelta
) -> tuple[datetime, datetime]:
    """The period of a report: ``end`` defaults to now, ``start`` to ``default`` before ``end``.

    Raises:
        InvalidInput: ``to`` is not after ``from``.
    """
    period_end = end or datetime.now(UTC)
    if start is not None:
        period_start = start
    elif period_end - EARLIEST > default:
        period_start = period_end - default
    else:
        period_start = EARLIEST
    if period_end <= period_start:
        raise InvalidInput.field("to", "must be after from")
    return period_start, period_end
