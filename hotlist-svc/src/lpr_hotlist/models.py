"""Every table of the hot-list service, imported so that the metadata knows them all."""

from lpr_hotlist.alerts.models import Alert, AlertEvent, DispositionCode, MatchedRead
from lpr_hotlist.audit_outbox import AuditOutbox
from lpr_hotlist.hotlists.models import (
    HotList,
    HotListConfig,
    HotListEntry,
    HotListVersion,
    ManualEntry,
    ShiftCheck,
)

__all__ = [
    "Alert",
    "AlertEvent",
    "AuditOutbox",
    "DispositionCode",
    "HotList",
    "HotListConfig",
    "HotListEntry",
    "HotListVersion",
    "ManualEntry",
    "MatchedRead",
    "ShiftCheck",
]
