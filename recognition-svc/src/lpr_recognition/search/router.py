"""Route of the read search: ``POST /v1/reads/search``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_common.context import ContextDep, verified_context
from lpr_common.db import SessionDep
from lpr_common.lanes import headers_of, json_body, json_response, request_session
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


async def search_lane(request: Request) -> Response:
    """``POST /v1/reads/search`` as an express lane (:mod:`lpr_common.lanes`): same checks, same answer."""
    context = await verified_context(request)
    body = await json_body(request, SearchRequest)
    response = Response()
    async with request_session(request) as session:
        page = await search_reads(request, body, context, session, response)
    return json_response(page, headers=headers_of(response))


LANES = {("POST", "/v1/reads/search"): search_lane}
"""The search is the platform's hottest read: it skips FastAPI's routing."""
