"""Smoke checks of a deployed environment through its public API gateway, with the anon key.

Each check exercises one service end to end (load balancer -> Kong key-auth -> service ->
database where it has one) and returns a `CheckResult` with its latency; every network wait
is bounded by `timeout_seconds`, so a hung service fails the run instead of stalling it.

    python -m ops.smoke.client --env staging              # URL and key from config + Secrets Manager
    python -m ops.smoke.client --url https://api.example.com --anon-key "$ANON_KEY"

The anon key is read from `<project>/<env>/api-keys` (needs secretsmanager:GetSecretValue on
it in the environment's account) unless given. It is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from config import load_config
from config.naming import SecretKeys, api_host, secret_name

DEFAULT_TIMEOUT_SECONDS = 10.0
REALTIME_TOPIC = "realtime:smoke"
JOIN_REF = "1"


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    detail: str


class CheckFailed(Exception):
    pass


@dataclass(frozen=True, kw_only=True)
class SmokeClient:
    base_url: str
    anon_key: str
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ssl_context: ssl.SSLContext | None = None

    def _headers(self) -> dict[str, str]:
        # Kong's key-auth reads `apikey`; PostgREST, Storage and the edge runtime verify the
        # bearer JWT themselves.
        return {"apikey": self.anon_key, "Authorization": f"Bearer {self.anon_key}", "Accept": "application/json"}

    def _get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url.rstrip("/") + path, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds, context=self.ssl_context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            raise CheckFailed(f"GET {path} answered HTTP {exc.code}") from None

    def _get_json(self, path: str) -> Any:
        status, body = self._get(path)
        try:
            return json.loads(body)
        except ValueError:
            raise CheckFailed(f"GET {path} answered {status} with a body that is not JSON") from None

    def _timed(self, name: str, check: Callable[[], str]) -> CheckResult:
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except (OSError, WebSocketException, ValueError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        latency = (time.monotonic() - started) * 1000
        return CheckResult(
            name=name, ok=ok, latency_ms=round(latency, 1), detail=detail.replace(self.anon_key, "<anon key>")
        )

    def auth_health(self) -> CheckResult:
        def check() -> str:
            body = self._get_json("/auth/v1/health")
            if not isinstance(body, dict) or "version" not in body:
                raise CheckFailed("GET /auth/v1/health did not return GoTrue's health document")
            return f"GoTrue {body['version']}"

        return self._timed("auth-health", check)

    def rest_root(self) -> CheckResult:
        def check() -> str:
            body = self._get_json("/rest/v1/")
            if not isinstance(body, dict):
                raise CheckFailed("GET /rest/v1/ did not return PostgREST's OpenAPI document")
            return f"PostgREST OpenAPI with {len(body.get('paths', {}))} paths"

        return self._timed("rest-root", check)

    def storage_status(self) -> CheckResult:
        def check() -> str:
            status, _ = self._get("/storage/v1/status")
            if status != 200:
                raise CheckFailed(f"GET /storage/v1/status answered {status}")
            return "storage-api is up"

        return self._timed("storage-status", check)

    def storage_buckets(self) -> CheckResult:
        # Listing buckets makes storage-api verify the JWT and query its schema.
        def check() -> str:
            body = self._get_json("/storage/v1/bucket")
            if not isinstance(body, list):
                raise CheckFailed("GET /storage/v1/bucket did not return a list of buckets")
            return f"{len(body)} buckets visible to anon"

        return self._timed("storage-buckets", check)

    def function_hello(self) -> CheckResult:
        def check() -> str:
            status, body = self._get("/functions/v1/hello")
            if status != 200 or not body:
                raise CheckFailed(f"GET /functions/v1/hello answered {status} with {len(body)} bytes")
            return f"edge runtime answered {len(body)} bytes"

        return self._timed("functions-hello", check)

    def realtime_url(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = {"https": "wss", "http": "ws"}[parts.scheme]
        query = urllib.parse.urlencode({"apikey": self.anon_key, "vsn": "1.0.0"})
        return urllib.parse.urlunsplit((scheme, parts.netloc, "/realtime/v1/websocket", query, ""))

    def realtime_join(self) -> CheckResult:
        """Joins a channel with the Phoenix protocol, as supabase-js does, and waits for the reply."""

        def check() -> str:
            deadline = time.monotonic() + self.timeout_seconds
            join = {
                "topic": REALTIME_TOPIC,
                "event": "phx_join",
                "payload": {
                    "config": {
                        "broadcast": {"ack": False, "self": False},
                        "presence": {"key": ""},
                        "postgres_changes": [],
                    },
                    "access_token": self.anon_key,
                },
                "ref": JOIN_REF,
                "join_ref": JOIN_REF,
            }
            with connect(
                self.realtime_url(),
                ssl=self.ssl_context if self.realtime_url().startswith("wss://") else None,
                open_timeout=self.timeout_seconds,
                close_timeout=1,
            ) as ws:
                ws.send(json.dumps(join))
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise CheckFailed(f"no phx_reply to the join within {self.timeout_seconds}s")
                    message = json.loads(ws.recv(timeout=remaining))
                    if message.get("event") != "phx_reply" or message.get("ref") != JOIN_REF:
                        continue
                    payload = message.get("payload") or {}
                    if payload.get("status") != "ok":
                        raise CheckFailed(f"join refused: {json.dumps(payload.get('response'))[:200]}")
                    return f"joined {REALTIME_TOPIC}"

        return self._timed("realtime-join", check)

    def run_all(self) -> list[CheckResult]:
        return [
            self.auth_health(),
            self.rest_root(),
            self.storage_status(),
            self.storage_buckets(),
            self.function_hello(),
            self.realtime_join(),
        ]


def anon_key_from_secrets_manager(secret_id: str, *, client: Any = None) -> str:
    client = client if client is not None else boto3.client("secretsmanager")
    keys = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    key = keys.get("anon_key") if isinstance(keys, dict) else None
    if not key:
        raise CheckFailed(f"{secret_id} holds no anon_key: has the API key custom resource run?")
    return key


def target_from_config(config_path: str | None, env_name: str) -> tuple[str, str]:
    """Base URL and API keys secret name of an environment, from the organization config."""
    cfg = load_config(config_path)
    if env_name not in cfg.environments:
        raise CheckFailed(f"unknown environment {env_name!r}; one of {sorted(cfg.environments)}")
    return f"https://{api_host(cfg.environments[env_name])}", secret_name(cfg, env_name, SecretKeys.API_KEYS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="environment name in the config (gives URL and secret)")
    parser.add_argument("--config", help="organization config (default: config/default.yaml)")
    parser.add_argument("--url", help="API base URL, e.g. https://api.dev.example.com")
    parser.add_argument(
        "--anon-key", default=os.environ.get("SUPABASE_ANON_KEY"), help="default: $SUPABASE_ANON_KEY or Secrets Manager"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)

    url, secret_id = args.url, None
    if args.env:
        config_url, secret_id = target_from_config(args.config, args.env)
        url = url or config_url
    if not url or not (args.anon_key or secret_id):
        parser.error("give --env, or --url with --anon-key / $SUPABASE_ANON_KEY")
    anon_key = args.anon_key or anon_key_from_secrets_manager(str(secret_id))

    results = SmokeClient(base_url=url, anon_key=anon_key, timeout_seconds=args.timeout).run_all()
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.name:<16} {result.latency_ms:>8.1f} ms  {result.detail}")
    failed = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
