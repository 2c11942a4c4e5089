"""Catalogue API routes (search_routes)."""

from __future__ import annotations

from propmubi.web.routing import Routes

routes = Routes(tags=["catalog"])
