"""``pipeline-backend``: run the service, or mint a development token.

pipeline-backend serve                 # HOST, PORT, WORKERS from the environment/.env
pipeline-backend token --sub alice --role agent --ttl 3600
pipeline-backend worker                # runs video pipeline jobs (needs REDIS_URL)
pipeline-backend apikey create --name renderer --role agent   # shows the key once
pipeline-backend apikey list
pipeline-backend apikey revoke <id>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import asdict

from backend.app.settings import Settings, load_settings
from backend.core.auth import Role, mint_token
from backend.core.settings import SettingsError


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app.ws_protocol import WS_PROTOCOL
    from backend.core.logs import configure_logging

    configure_logging(settings)
    # uvicorn re-raises the stop signal once it has shut down gracefully; with these
    # handlers in place that re-raise is a no-op, so a clean stop exits 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.run(
        "backend.app.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        ws=WS_PROTOCOL,  # uvicorn's sans-I/O protocol, a batch in one write
        ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        log_config=None,
        server_header=False,
    )
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    secret = args.secret or (
        settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
    )
    if not secret:
        print("token: set AUTH_JWT_SECRET (or pass --secret) to mint HS256 tokens", file=sys.stderr)
        return 2
    print(
        mint_token(
            secret,
            args.sub,
            Role(args.role),
            args.ttl,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    )
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    token = args.token
    if token is None and args.api_key is None and settings.auth_jwt_secret is not None:
        token = mint_token(
            settings.auth_jwt_secret.get_secret_value(),
            args.agent,
            Role.AGENT,
            300,
            audience=settings.auth_audience,
            issuer=settings.auth_issuer,
        )
    body = {
        "agent": args.agent,
        "status": args.status,
        "progress": args.progress,
        "message": args.message,
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if args.api_key:
        headers = {"X-API-Key": args.api_key}
    url = f"{args.url.rstrip('/')}/api/sessions/{args.session_id}/events"
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        print(f"publish: {url}: {exc}", file=sys.stderr)
        return 1
    print(response.text)
    return 0 if response.status_code == 202 else 1


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from backend.app.worker import main as worker_main
    from backend.core.logs import configure_logging
    from backend.pipeline.settings import load_pipeline_settings

    configure_logging(settings)
    try:
        pipeline_settings = load_pipeline_settings()
        if args.concurrency:
            pipeline_settings.pipeline_concurrency = args.concurrency
        return worker_main(settings, pipeline_settings)
    except SettingsError as exc:
        print(f"pipeline-backend worker: {exc}", file=sys.stderr)
        return 2


def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url:
        print(
            "apikey: set REDIS_URL: keys live in the shared store, and without Redis each "
            "service process has its own, which this command cannot reach",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_apikey_command(settings, args))


async def _apikey_command(settings: Settings, args: argparse.Namespace) -> int:
    from backend.core.api_keys import ApiKeys
    from backend.core.errors import DomainError
    from backend.core.storage import open_store

    store = open_store(settings.redis_url, prefix=settings.redis_prefix, max_connections=4)
    keys = ApiKeys(store)
    try:
        if args.action == "create":
            key, record = await keys.create(args.name, args.role)
            print(f"id:   {record.id}\nname: {record.name}\nrole: {record.role.value}")
            print(f"key:  {key}")
            print("The key is shown only now; store it as a secret.", file=sys.stderr)
        elif args.action == "list":
            rows = [asdict(info) for info in await keys.list()]
            if args.json:
                print(json.dumps(rows))
            else:
                header = ("id", "name", "role", "created_at", "last_used_at", "revoked_at")
                print("\t".join(header))
                for row in rows:
                    print("\t".join(str(row[c] or "-") for c in header))
        else:
            record = await keys.revoke(args.id)
            print(f"revoked {record.id} ({record.name}) at {record.revoked_at}")
    except DomainError as exc:
        print(f"apikey: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-backend",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service under uvicorn")
    serve.add_argument("--host", help="overrides HOST")
    serve.add_argument("--port", type=int, help="overrides PORT")
    serve.add_argument("--workers", type=int, help="overrides WORKERS")
    serve.set_defaults(handler=_serve)

    token = commands.add_parser("token", help="mint a development JWT (HS256)")
    token.add_argument("--sub", required=True, help="the subject (user or agent id)")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.USER.value)
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--secret", help="overrides AUTH_JWT_SECRET")
    token.set_defaults(handler=_token)

    worker = commands.add_parser("worker", help="run video pipeline jobs (needs REDIS_URL)")
    worker.add_argument("--concurrency", type=int, help="overrides PIPELINE_CONCURRENCY")
    worker.set_defaults(handler=_worker)

    publish = commands.add_parser("publish", help="publish one agent status event")
    publish.add_argument("session_id")
    publish.add_argument("--agent", default="cli")
    publish.add_argument(
        "--status",
        default="info",
        choices=["queued", "running", "completed", "failed", "cancelled", "info"],
    )
    publish.add_argument("--progress", type=float)
    publish.add_argument("--message")
    publish.add_argument("--url", default="http://127.0.0.1:8000")
    publish.add_argument("--token", help="a bearer token (default: minted from AUTH_JWT_SECRET)")
    publish.add_argument("--api-key", help="an API key instead of a token")
    publish.set_defaults(handler=_publish)

    apikey = commands.add_parser("apikey", help="create, list or revoke API keys")
    actions = apikey.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key, shown once")
    create.add_argument("--name", required=True, help="who uses it (the principal's name)")
    create.add_argument("--role", choices=[r.value for r in Role], required=True)
    listing = actions.add_parser("list", help="every key: name, role, created, last used")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    revoke = actions.add_parser("revoke", help="stops the key on every process within 5 s")
    revoke.add_argument("id", help="the key's id (from create or list)")
    apikey.set_defaults(handler=_apikey)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"pipeline-backend: {exc}", file=sys.stderr)
        return 2
    handler = args.handler
    return int(handler(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
