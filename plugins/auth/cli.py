"""``propmubi users ...``: show, grant and revoke a user's roles (by phone number).

Roles travel in access tokens, so a change shows at the user's next refresh (at most
``plugins.auth.access_ttl`` seconds later).
"""

from __future__ import annotations

import argparse

from propmubi.actors import Actor
from propmubi.errors import ValidationFailed
from propmubi_plugins.auth import service, store
from propmubi_plugins.auth.api import ROLES
from propmubi_plugins.auth.state import Ctx


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``users`` actions."""
    sub = parser.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    show = sub.add_parser("roles", help="show a user's roles")
    show.add_argument("phone")
    for action, text in (("grant", "give a user a role"), ("revoke", "take a role away")):
        cmd = sub.add_parser(action, help=text)
        cmd.add_argument("phone")
        cmd.add_argument("role", choices=ROLES)


async def run(args: argparse.Namespace, ctx: Ctx) -> int:
    """Run one ``users`` action; an unknown number exits non-zero with one line on stderr."""
    action = args.users_action
    actor = Actor.system("users-cli")
    try:
        phone = service.normalise_phone(args.phone, ctx.settings.default_region)
    except ValidationFailed:
        raise SystemExit(f"propmubi users {action}: {args.phone!r} is not a valid phone "
                         "number") from None
    user_id = await store.user_id_by_phone(ctx.db, phone)
    if user_id is None:
        raise SystemExit(f"propmubi users {action}: no user with phone {phone} (users register "
                         "by signing in once)")
    if action == "grant":
        await service.grant_role(ctx, actor, user_id, args.role)
    elif action == "revoke" and not await service.revoke_role(ctx, actor, user_id, args.role):
        raise SystemExit(f"propmubi users revoke: {phone} does not have the {args.role} role")
    roles = await store.roles_of(ctx.db, user_id)
    print(f"{phone} id={user_id} roles={','.join(roles) or '-'}")
    return 0
