"""``propmubi auth rotate-pii-key``: re-encrypt every stored identity number under the current
PII key, in batches, so that older keys can then be retired.

Run it after making the new key current (``plugins.auth.pii_key_id`` / ``pii_key``) with the
old ones still listed in ``pii_previous_keys``. It is safe to stop and run again: each batch
commits on its own and rows already under the current key are skipped.
"""

from __future__ import annotations

import argparse
import sys

from propmubi.actors import Actor
from propmubi_plugins.auth.kyc import service, store
from propmubi_plugins.auth.state import Ctx


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``auth`` actions."""
    sub = parser.add_subparsers(dest="auth_action", required=True, metavar="ACTION")
    rotate = sub.add_parser("rotate-pii-key",
                            help="re-encrypt every identity number under the current PII key")
    rotate.add_argument("--batch", type=int, default=500,
                        help="numbers per transaction (default 500)")


async def run(args: argparse.Namespace, ctx: Ctx) -> int:
    """Run one ``auth`` action; prints counts; exits 1 when some numbers could not be opened."""
    if args.auth_action != "rotate-pii-key":  # pragma: no cover - argparse refuses others
        return 2
    if args.batch <= 0:
        raise SystemExit("propmubi auth rotate-pii-key: --batch must be positive")
    current = ctx.state.pii.current_id
    result = await service.rotate_keys(ctx, Actor.system("rotate-pii-key"), args.batch)
    counts = await store.key_id_counts(ctx.db)
    left = sum(n for key_id, n in counts.items() if key_id != current)
    print(f"re-encrypted {result.reencrypted} numbers under key {current} in "
          f"{result.batches} batches; {counts.get(current, 0)} numbers under {current}, "
          f"{left} under older keys")
    for failure in result.failures:
        print(f"propmubi auth rotate-pii-key: {failure}", file=sys.stderr)
    return 1 if result.failures else 0
