"""``propmubi auth rotate-pii-key``: re-encrypt every stored identity number under the current
PII key, in batches, so that older keys can then be retired.

Run it after making the new key current (``plugins.auth.pii_key_id`` / ``pii_key``) with the
old ones still listed in ``pii_previous_keys``. It is safe to stop and run again: each batch
commits on its own and rows already under the current key are skipped.
"""

from __future__ import annotations

import argparse
import sys
import uuid

from propmubi.context import Services
from propmubi_plugins.auth import kyc_store, pii


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``auth`` actions."""
    sub = parser.add_subparsers(dest="auth_action", required=True, metavar="ACTION")
    rotate = sub.add_parser("rotate-pii-key",
                            help="re-encrypt every identity number under the current PII key")
    rotate.add_argument("--batch", type=int, default=500,
                        help="numbers per transaction (default 500)")


async def rotate(services: Services, batch: int) -> tuple[int, int, list[str]]:
    """Re-encrypt every number not under the current key; ``(re-encrypted, batches,
    failures)`` where each failure says which row could not be opened and why."""
    keyring = pii.keyring(services)
    done = batches = 0
    failures: list[str] = []
    after = (uuid.UUID(int=0), "")
    while True:
        async with services.db.transaction() as tx:
            rows = await kyc_store.numbers_to_rotate(tx, keyring.current_id, after, batch)
            if not rows:
                break
            for row in rows:
                aad = pii.associated_data(row["record_id"], row["user_id"], row["kind"])
                try:
                    number = keyring.open(pii.Sealed(row["key_id"], bytes(row["nonce"]),
                                                     bytes(row["ciphertext"])), aad)
                except (pii.PiiKeyError, pii.PiiDecryptError) as exc:
                    failures.append(f"record {row['record_id']} {row['kind']}: {exc}")
                    continue
                box = keyring.seal(number, aad)
                await kyc_store.reseal(tx, row["record_id"], row["kind"], box.key_id,
                                       box.nonce, box.ciphertext)
                done += 1
            # Keyset, not OFFSET: rows that failed stay behind the cursor instead of looping.
            after = (rows[-1]["record_id"], rows[-1]["kind"])
        batches += 1
    return done, batches, failures


async def run(args: argparse.Namespace, services: Services) -> int:
    """Run one ``auth`` action; prints counts; exits 1 when some numbers could not be opened."""
    if args.auth_action != "rotate-pii-key":  # pragma: no cover - argparse refuses others
        return 2
    if args.batch <= 0:
        raise SystemExit("propmubi auth rotate-pii-key: --batch must be positive")
    current = pii.keyring(services).current_id
    done, batches, failures = await rotate(services, args.batch)
    counts = await kyc_store.key_id_counts(services.db)
    left = sum(n for key_id, n in counts.items() if key_id != current)
    print(f"re-encrypted {done} numbers under key {current} in {batches} batches; "
          f"{counts.get(current, 0)} numbers under {current}, {left} under older keys")
    for failure in failures:
        print(f"propmubi auth rotate-pii-key: {failure}", file=sys.stderr)
    return 1 if failures else 0
