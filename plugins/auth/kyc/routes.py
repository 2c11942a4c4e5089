"""The KYC JSON API (``/api/v1/me/kyc``): an agent's or builder's own KYC, numbers masked."""

from __future__ import annotations

from aiohttp import web

from propmubi.web.auth import signed_in
from propmubi.web.routing import Routes
from propmubi_plugins.auth.kyc import service
from propmubi_plugins.auth.kyc.models import KYC_ROLES, KycRecordOut, KycRole, KycSubmissionIn
from propmubi_plugins.auth.state import Ctx

routes = Routes(tags=["kyc"])


@routes.get("/me/kyc", response=list[KycRecordOut], roles=list(KYC_ROLES))
async def my_kyc(request: web.Request, ctx: Ctx) -> list[KycRecordOut]:
    """My KYC records, one per KYC role I hold; identity numbers are always masked."""
    actor = signed_in(request)
    assert actor.user_id is not None  # signed_in only returns users
    return await service.records(ctx, actor, actor.user_id)


@routes.put("/me/kyc/{role}", params=KycRole, body=KycSubmissionIn, response=KycRecordOut,
            roles=list(KYC_ROLES), errors=[403, 409], rate_limit="20/hour")
async def submit_kyc(request: web.Request, ctx: Ctx, params: KycRole, body: KycSubmissionIn
                     ) -> KycRecordOut:
    """Submit my KYC for a role, or resubmit it after a rejection.

    Allowed when the record is not started (-> submitted) or rejected (-> resubmitted); a
    pending or verified record answers 409. Only a holder of the role may submit for it (403).
    Numbers are encrypted at rest and answered masked.
    """
    return await service.submit(ctx, signed_in(request), params.role, body)
