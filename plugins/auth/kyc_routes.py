"""The KYC JSON API (``/api/v1/me/kyc``)."""

from __future__ import annotations

from propmubi.web.routing import Routes

routes = Routes(tags=["kyc"])
