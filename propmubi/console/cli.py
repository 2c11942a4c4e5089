"""``propmubi staff ...``: create, list, re-password and disable console staff accounts."""

from __future__ import annotations

import argparse
from pathlib import Path

from propmubi.console import accounts, store
from propmubi.context import PluginContext

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``staff`` actions and their options."""
    sub = parser.add_subparsers(dest="staff_action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create an account (prints a generated password)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=accounts.ROLES, default="staff",
                        help="staff (default) or admin")
    create.add_argument("--password-file", help="read the password from this file instead "
                        "of generating one")
    sub.add_parser("list", help="list accounts")
    setpw = sub.add_parser("set-password", help="set a new password (prints a generated one)")
    setpw.add_argument("--email", required=True)
    setpw.add_argument("--password-file")
    disable = sub.add_parser("disable", help="disable an account and end its sessions")
    disable.add_argument("--email", required=True)


def _password(path: str | None) -> tuple[str, bool]:
    """The password from ``path`` (first line), or a generated one; and whether generated."""
    if not path:
        return accounts.generate_password(), True
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"propmubi staff: cannot read the password file {path}: {exc}") from None
    lines = text.splitlines()
    return (lines[0] if lines else ""), False


async def run(args: argparse.Namespace, ctx: PluginContext[None, None]) -> int:
    """Run one ``staff`` action; errors exit non-zero with one line on stderr."""
    db = ctx.db
    action = args.staff_action
    try:
        if action == "create":
            password, generated = _password(args.password_file)
            user = await accounts.create_staff(db, args.email, args.name, password, [args.role])
            print(f"created {user.email} ({', '.join(user.roles)}) id={user.id}")
            if generated:
                print(f"password: {password}")
                print("(shown once; store it in a password manager)")
        elif action == "list":
            for row in await store.list_all(db):
                state = "disabled" if row["disabled"] else "active"
                last = row["last_login_at"].isoformat() if row["last_login_at"] else "never"
                print(f"{row['email']:<32} {','.join(row['roles']):<12} {state:<8} "
                      f"last login {last}  {row['name']}")
        elif action == "set-password":
            password, generated = _password(args.password_file)
            await accounts.change_password(db, args.email, password)
            print(f"password changed for {args.email}; its open console sessions are ended")
            if generated:
                print(f"password: {password}")
        elif action == "disable":
            if not await store.disable(db, args.email):
                raise accounts.AccountError(f"no staff account for {args.email}")
            print(f"disabled {args.email}; its open console sessions are ended")
    except accounts.AccountError as exc:
        raise SystemExit(f"propmubi staff {action}: {exc}") from None
    return 0
