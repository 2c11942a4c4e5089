"""The KYC JSON API (``/api/v1/me/kyc``): an agent's or builder's own KYC, numbers masked."""

from __future__ import annotations

import uuid

from aiohttp import web

from propmubi.actors import Actor
from propmubi.web.appkeys import PRINCIPAL
from propmubi.web.routing import Routes
from propmubi_plugins.auth.kyc import service
from propmubi_plugins.auth.kyc.models import KYC_ROLES, KycRecordOut, KycRole, KycSubmissionIn
from propmubi_plugins.auth.state import Ctx

routes = Routes(tags=["kyc"])


@routes.get("/me/kyc", response=list[KycRecordOut], roles=list(KYC_ROLES))
async def my_kyc(request: web.Request, ctx: Ctx) -> list[KycRecordOut]:
    """My KYC records, one per KYC role I hold; identity numbers are always masked."""
    principal = request[PRINCIPAL]
    return await service.records(ctx, Actor.user(principal), uuid.UUID(principal.subject))


@routes.put("/me/kyc/{role}", params=KycRole, body=KycSubmissionIn, response=KycRecordOut,
            roles=list(KYC_ROLES), errors=[403, 409], rate_limit="20/hour")
async def submit_kyc(request: web.Request, ctx: Ctx, params: KycRole, body: KycSubmissionIn
                     ) -> KycRecordOut:
    """Submit my KYC for a role, or resubmit it after a rejection.

    Allowed when the record is not started (-> submitted) or rejected (-> resubmitted); a
    pending or verified record answers 409. Only a holder of the role may submit for it (403).
    Numbers are encrypted at rest and answered masked.
    """
    return await service.submit(ctx, Actor.user(request[PRINCIPAL]), params.role, body)
