"""The benchmark's baseline: a bare aiohttp app doing what Propmubi's two measured routes do.

``GET /health`` answers the same JSON as Propmubi's; ``GET /notes?limit=20`` runs the reference
plugin's SELECT through an aiopg pool of the same size and answers the same JSON (orjson). No
middlewares, no validation framework, no metrics: the framework's ceiling on this machine.

Run by ``bench_http.py``: ``python bare_app.py --port P --dsn URL [--pool-min N --pool-max N]``,
twice on one port (SO_REUSEPORT), on uvloop. SIGTERM / SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aiopg
import orjson
import psycopg2.extras
import uvloop
from aiohttp import web

psycopg2.extras.register_uuid()  # as propmubi.db does: uuid columns arrive as uuid.UUID

VERSION = "0.1.0"
LATEST = ("SELECT id, text, tags, created_at FROM reference_notes "
          "ORDER BY created_at DESC, id DESC LIMIT %s")
POOL: web.AppKey[aiopg.Pool] = web.AppKey("pool")


async def health(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps({"status": "ok", "version": VERSION}),
                        content_type="application/json")


async def notes(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise web.HTTPBadRequest() from None
    if not 1 <= limit <= 100:
        raise web.HTTPBadRequest()
    async with request.app[POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(LATEST, (limit,))
        rows = await cur.fetchall()
        names = [c.name for c in cur.description]
    return web.Response(body=orjson.dumps([dict(zip(names, row, strict=True)) for row in rows]),
                        content_type="application/json")


async def main(args: argparse.Namespace) -> None:
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/notes", notes)
    app[POOL] = await aiopg.create_pool(args.dsn, minsize=args.pool_min, maxsize=args.pool_max)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, reuse_port=True, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        app[POOL].close()
        await app[POOL].wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--pool-min", type=int, default=2)
    parser.add_argument("--pool-max", type=int, default=16)
    uvloop.run(main(parser.parse_args()))
