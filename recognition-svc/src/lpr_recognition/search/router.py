"""Route of the read search: ``POST /v1/reads/search``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_common.context import ContextDep
from lpr_common.db import SessionDep
from lpr_recognition.search import service
from lpr_recognition.search.marking import MARKING_HEADER
from lpr_recognition.search.schemas import FOUO, SearchPage, SearchRequest
from lpr_recognition.settings import Settings

router = APIRouter(prefix="/v1/reads", tags=["search"])

# Beyond this many ids the gateway records the query and the count instead.
MAX_RECORD_IDS = 500


@router.post("/search", responses={200: {"headers": {MARKING_HEADER: {"description": FOUO}}}})
async def search_reads(
    request: Request,
    body: SearchRequest,
    context: ContextDep,
    session: SessionDep,
    response: Response,
) -> SearchPage:
    """Search historical reads for a case."""
    settings: Settings = request.app.state.settings
    if isinstance(session.bind, AsyncEngine) and not session.in_transaction():
        # Read only: without BEGIN/COMMIT the search saves two round trips. (A session
        # bound to a connection joins its caller's transaction, as the tests' does.)
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    page = await service.search(session, context, body, platform_agency=settings.agency)
    read_ids = list(dict.fromkeys(str(result.read_id) for result in page.results))
    response.headers.update(
        {
            "X-LPR-Result-Count": str(page.count),
            "X-LPR-Data-Class": "reads",
            "X-LPR-Record-Ids": ",".join(read_ids[:MAX_RECORD_IDS]),
            "X-LPR-Owner-Agency": service.owner_agency(context, settings.agency),
            MARKING_HEADER: FOUO,
        }
    )
    return page
