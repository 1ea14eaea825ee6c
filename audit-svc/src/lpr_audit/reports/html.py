"""The transparency report as one self-contained HTML page with inline SVG bar charts."""

from __future__ import annotations

from html import escape

from lpr_audit.reports.transparency import Count, TransparencyReport

_BAR_HEIGHT = 22
_WIDTH = 520
_LABEL = 180


def bar_chart(title: str, counts: list[Count]) -> str:
    """Return a section with a horizontal bar chart of ``counts`` (or a 'none' line)."""
    if not counts:
        return f"<section><h2>{escape(title)}</h2><p>none in this period</p></section>"
    top = max(c.count for c in counts) or 1
    height = _BAR_HEIGHT * len(counts) + 4
    bars: list[str] = []
    for index, count in enumerate(counts):
        y = index * _BAR_HEIGHT + 2
        width = round((_WIDTH - _LABEL - 60) * count.count / top)
        bars.append(
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(count.key)}</text>'
            f'<rect x="{_LABEL}" y="{y}" width="{width}" height="{_BAR_HEIGHT - 6}" '
            'fill="#3b6ea5"/>'
            f'<text x="{_LABEL + width + 6}" y="{y + 15}">{count.count}</text>'
        )
    svg = (
        f'<svg role="img" aria-label="{escape(title)}" width="{_WIDTH}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="13">'
        + "".join(bars)
        + "</svg>"
    )
    return f"<section><h2>{escape(title)}</h2>{svg}</section>"


def render(report: TransparencyReport, agency: str) -> str:
    """Render the whole report."""
    sharing = [
        Count(key=s.recipient_agency, count=s.records) for s in report.sharing_by_recipient_agency
    ]
    deletions = [
        Count(key=d.retention_class, count=d.deleted) for d in report.deletions_by_retention_class
    ]
    sections = [
        f"<p>Reads collected: <strong>{report.reads}</strong></p>",
        bar_chart("Hits by list category", report.hits_by_list_category),
        bar_chart("Alerts by disposition", report.alerts_by_disposition),
        bar_chart("Searches by purpose", report.searches_by_purpose),
        bar_chart("Records shared, by recipient agency", sharing),
        bar_chart("Records deleted, by retention class", deletions),
        bar_chart("Requests by policy outcome", report.requests_by_outcome),
    ]
    period = f"{escape(report.period_start.isoformat())} to {escape(report.period_end.isoformat())}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>LPR transparency report {escape(agency)}</title>"
        "<style>body{font-family:sans-serif;max-width:720px;margin:2em auto}"
        "h2{font-size:1.1em;margin-top:1.6em}</style></head><body>"
        f"<h1>License plate reader transparency report</h1><p>Agency {escape(agency)}, "
        f"{period}. Aggregate counts only; no plate appears in this report.</p>"
        + "".join(sections)
        + "</body></html>"
    )
