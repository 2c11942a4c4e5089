"""``propmubi users``: roles by phone number."""

from __future__ import annotations

import argparse

import pytest

from propmubi_plugins.auth import cli
from tests.plugins.auth.conftest import PHONE, sign_in


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(list(argv))


async def test_grant_show_and_revoke(client, services, capsys):
    ctx = services.context("auth")
    tokens = await sign_in(client)
    assert await cli.run(parse("grant", "98123 45678", "agent"), ctx) == 0
    assert capsys.readouterr().out.strip() == \
        f"{PHONE} id={tokens['user_id']} roles=agent,buyer"
    await cli.run(parse("revoke", PHONE, "buyer"), ctx)
    await cli.run(parse("roles", PHONE), ctx)
    assert capsys.readouterr().out.splitlines()[-1].endswith("roles=agent")
    with pytest.raises(SystemExit, match="does not have the buyer role"):
        await cli.run(parse("revoke", PHONE, "buyer"), ctx)


async def test_unknown_or_invalid_numbers(services):
    ctx = services.context("auth")
    with pytest.raises(SystemExit, match="no user with phone"):
        await cli.run(parse("roles", "+919876543210"), ctx)
    with pytest.raises(SystemExit, match="not a valid phone number"):
        await cli.run(parse("roles", "12"), ctx)
    with pytest.raises(SystemExit):
        parse("grant", PHONE, "emperor")
