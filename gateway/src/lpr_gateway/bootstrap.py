"""Bootstrap the first administrator straight into the database (``lprctl admin``).

Every later user is created through the API, by an administrator, under the policy.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

from lpr_common.db import build_engine, build_sessionmaker
from lpr_gateway.governance.models import Agency
from lpr_gateway.identity.models import UserCreate, UserRole
from lpr_gateway.identity.service import create_user


async def create_user_in_database(
    database_url: str,
    *,
    username: str,
    password: str,
    roles: list[str],
    agency: str,
    training_expires_at: datetime | None,
    authorised_repairer: bool = False,
) -> UUID:
    """Create a user (and its agency record if missing); return the user's id.

    Raises:
        lpr_common.errors.Conflict: the username is taken.
        pydantic.ValidationError: a field is not acceptable (short password, bad role).
    """
    data = UserCreate(
        username=username,
        password=password,
        roles=[UserRole(role) for role in roles],
        agency=agency,
        training_expires_at=training_expires_at,
        authorised_repairer=authorised_repairer,
    )
    engine = build_engine(database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session:
            if await session.get(Agency, agency) is None:
                session.add(Agency(id=agency, name=agency))
            user = await create_user(
                session=session, data=data, default_agency=agency, recorded_by="bootstrap"
            )
            await session.commit()
            return user.id
    finally:
        await engine.dispose()


def bootstrap_user(
    database_url: str,
    *,
    username: str,
    password: str,
    roles: list[str],
    agency: str,
    training_expires_at: datetime | None,
    authorised_repairer: bool = False,
) -> UUID:
    """Synchronous :func:`create_user_in_database` for command-line use."""
    return asyncio.run(
        create_user_in_database(
            database_url,
            username=username,
            password=password,
            roles=roles,
            agency=agency,
            training_expires_at=training_expires_at,
            authorised_repairer=authorised_repairer,
        )
    )
