"""Smoke suite of a deployed environment, through its public API gateway, as a real client.

Each case exercises one capability end to end (load balancer -> Kong -> service -> database
or S3) with the keys a deployment hands out, and removes everything it created, whatever the
outcome. Every network wait is bounded by `timeout_seconds`, so a hung service fails the run
instead of stalling it. The cases cover what Supabase's own self-hosted suite
(supabase/supabase `docker/tests/`) covers, on this platform's routes.

    python -m ops.smoke.client --env staging         # URLs from config, keys from Secrets Manager
    python -m ops.smoke.client --url https://api.example.com --public-key "$PK" --secret-key "$SK"

Keys are opaque strings: a publishable (`sb_publishable_...`) or legacy anon key as the public
key, a secret (`sb_secret_...`) or legacy service_role key as the secret key. The client sends
them as supabase-js does (`apikey`, and `Authorization: Bearer` with the key or a user's
session token) and never looks inside them, so either kind works. With `--env` every key kind
found in `<project>/<env>/api-keys` is tried. Keys and tokens are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from config import load_config
from config.naming import SecretKeys, api_host, secret_name, studio_host

DEFAULT_TIMEOUT_SECONDS = 10.0
# Kind -> (public key field, secret key field) in the API keys secret, and the environment
# variables that give them directly.
KEY_FIELDS: dict[str, tuple[str, str]] = {
    "opaque": ("publishable_key", "secret_key"),
    "legacy": ("anon_key", "service_role_key"),
}
KEY_ENV_VARS: dict[str, tuple[str, str]] = {
    "opaque": ("SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY"),
    "legacy": ("SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY"),
}
# The RLS probe table `database/bootstrap.sql` creates: PostgREST reads its schema cache at
# start, so the table must exist before the services do; a table made by the run would stay
# invisible until a restart.
SMOKE_TABLE = "smoke_rows"
# Above 6 MB: Supabase's threshold for resumable uploads, and far above the body limits a
# proxy or WAF applies by default, so a standard upload of this size proves the whole path
# (ALB, WAF exclusion, Kong, storage-api's FILE_SIZE_LIMIT, S3) carries large objects.
LARGE_OBJECT_BYTES = 7 * 1024 * 1024
# What the gateway answers a refused caller: Kong's key-auth (401) or ACL (403), GoTrue's
# admin guard, PostgREST's permission errors (401 anonymous, 403 signed in).
REFUSED = frozenset({401, 403})
# GoTrue answers a revoked refresh token or a deleted user's credentials with 400.
REFUSED_GRANT = frozenset({400, 401, 403})
# Storage answers an object its RLS hides as "not found" rather than "forbidden".
HIDDEN_OBJECT = frozenset({400, 401, 403, 404})
# The gateway serves the OpenAPI root to secret keys only (route `rest-v1-openapi`), as
# upstream's does. tests/unit/test_smoke_client.py holds this to the rendered Kong config.
OPENAPI_ROOT_PUBLIC = False
# A key no platform hands out, for the gateway's refusals.
INVALID_KEY = "invalid-key"
# What an interrupted run leaves (a killed build never reaches its cleanup) is swept once it
# is older than this, so a concurrent run's data is never touched.
STALE_AFTER_SECONDS = 3600
TEST_EMAIL_DOMAIN = "example.com"
_RUN_BUCKET = re.compile(r"smoke-[0-9a-f]{8}")
_RUN_EMAIL = re.compile(rf"smoke-[0-9a-f]{{8}}-[a-z]+@{re.escape(TEST_EMAIL_DOMAIN)}")
_TOKENS = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*|sb_(?:publishable|secret)_[\w-]+")


@dataclass(frozen=True, kw_only=True)
class ApiKeys:
    kind: str
    public: str
    secret: str


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    name: str
    ok: bool
    latency_ms: float
    detail: str


class CheckFailed(Exception):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"answered {self.status} with a body that is not JSON") from None


@dataclass(frozen=True, kw_only=True)
class SmokeUser:
    id: str
    email: str
    password: str


@dataclass(frozen=True, kw_only=True)
class Session:
    access_token: str
    refresh_token: str


def redact(text: str, *known: str) -> str:
    for value in known:
        if value:
            text = text.replace(value, "<redacted>")
    return _TOKENS.sub("<redacted>", text)


@dataclass(frozen=True, kw_only=True)
class SmokeClient:
    base_url: str
    keys: ApiKeys
    studio_url: str | None = None
    openapi_root_public: bool = OPENAPI_ROOT_PUBLIC
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ssl_context: ssl.SSLContext | None = None
    # Every name a run creates carries it, so concurrent runs never touch each other's data.
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def bucket_name(self) -> str:
        return f"smoke-{self.run_id}"

    # -- transport ------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        base_url: str | None = None,
    ) -> Reply:
        """One request as supabase-js sends it: `apikey` names the caller to Kong, the bearer
        token is the user's session when there is one, else the key itself."""
        url = (self.base_url if base_url is None else base_url).rstrip("/") + path
        sent = {"Accept": "application/json", **(headers or {})}
        if key is not None:
            sent["apikey"] = key
            sent["Authorization"] = f"Bearer {token or key}"
        data: bytes | None = None
        if isinstance(body, bytes):
            data = body
            sent.setdefault("Content-Type", "application/octet-stream")
        elif body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(url, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds, context=self.ssl_context) as response:
                return Reply(response.status, response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read())

    def expect(self, reply: Reply, statuses: frozenset[int] | set[int], what: str) -> Reply:
        if reply.status not in statuses:
            excerpt = reply.body[:200].decode("utf-8", "replace")
            raise CheckFailed(f"{what} answered {reply.status}, expected {sorted(statuses)}: {excerpt}")
        return reply

    def _timed(self, name: str, check: Callable[[], str]) -> CheckResult:
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
            # A failed cleanup must not hide the failure that preceded it.
            if isinstance(exc.__context__, CheckFailed):
                detail += f" (after: {exc.__context__})"
        except (OSError, WebSocketException, ValueError, KeyError, TypeError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        latency = (time.monotonic() - started) * 1000
        return CheckResult(
            name=name,
            ok=ok,
            latency_ms=round(latency, 1),
            detail=redact(detail, self.keys.public, self.keys.secret),
        )

    # -- shared steps ---------------------------------------------------------------------

    @contextlib.contextmanager
    def temporary_user(self, label: str) -> Iterator[SmokeUser]:
        """A confirmed user made with the admin API and deleted on the way out.

        The admin API rather than /signup: with autoconfirm off (this platform's setting)
        a sign-up mails a confirmation through SES, and a bounce from a made-up address
        would count against the sender's reputation.
        """
        email = f"smoke-{self.run_id}-{label}@{TEST_EMAIL_DOMAIN}"
        password = secrets.token_urlsafe(24)
        created = self.expect(
            self.request(
                "POST",
                "/auth/v1/admin/users",
                key=self.keys.secret,
                body={"email": email, "password": password, "email_confirm": True},
            ),
            {200, 201},
            "POST /auth/v1/admin/users (secret key)",
        ).json()
        user = SmokeUser(id=str(created["id"]), email=email, password=password)
        try:
            yield user
        finally:
            self.expect(
                self.request("DELETE", f"/auth/v1/admin/users/{user.id}", key=self.keys.secret),
                {200, 204},
                "cleanup: DELETE /auth/v1/admin/users/<test user> (secret key)",
            )

    def sign_in(self, user: SmokeUser) -> Session:
        body = self.expect(
            self.request(
                "POST",
                "/auth/v1/token?grant_type=password",
                key=self.keys.public,
                body={"email": user.email, "password": user.password},
            ),
            {200},
            "POST /auth/v1/token?grant_type=password (public key)",
        ).json()
        if body.get("user", {}).get("id") != user.id:
            raise CheckFailed("sign-in returned a session for another user")
        return Session(access_token=body["access_token"], refresh_token=body["refresh_token"])

    def _current_user_id(self, session: Session) -> str:
        body = self.expect(
            self.request("GET", "/auth/v1/user", key=self.keys.public, token=session.access_token),
            {200},
            "GET /auth/v1/user (session token)",
        ).json()
        return str(body.get("id"))

    # -- cases ----------------------------------------------------------------------------

    def sweep_stale(self) -> CheckResult:
        """Removes test users, buckets and probe rows that an interrupted earlier run left
        behind, once they are older than STALE_AFTER_SECONDS; nothing else matches."""

        def check() -> str:
            cutoff = datetime.now(UTC) - timedelta(seconds=STALE_AFTER_SECONDS)

            def stale(item: dict[str, Any]) -> bool:
                return datetime.fromisoformat(str(item["created_at"])) < cutoff

            users = self.expect(
                self.request("GET", "/auth/v1/admin/users?filter=smoke-&page=1&per_page=1000", key=self.keys.secret),
                {200},
                "GET /auth/v1/admin/users (secret key)",
            ).json()["users"]
            old_users = [u for u in users if _RUN_EMAIL.fullmatch(u.get("email") or "") and stale(u)]
            for user in old_users:
                self.expect(
                    self.request("DELETE", f"/auth/v1/admin/users/{user['id']}", key=self.keys.secret),
                    {200, 204},
                    "DELETE of a stale test user",
                )
            buckets = self.expect(
                self.request("GET", "/storage/v1/bucket", key=self.keys.secret), {200}, "GET /storage/v1/bucket"
            ).json()
            old_buckets = [b["id"] for b in buckets if _RUN_BUCKET.fullmatch(b.get("id") or "") and stale(b)]
            for bucket in old_buckets:
                objects = self.expect(
                    self.request(
                        "POST",
                        f"/storage/v1/object/list/{bucket}",
                        key=self.keys.secret,
                        body={"prefix": "", "limit": 1000},
                    ),
                    {200},
                    "listing of a stale bucket",
                ).json()
                if objects:
                    self.expect(
                        self.request(
                            "DELETE",
                            f"/storage/v1/object/{bucket}",
                            key=self.keys.secret,
                            body={"prefixes": [o["name"] for o in objects]},
                        ),
                        {200},
                        "DELETE of a stale bucket's objects",
                    )
                self.expect(
                    self.request("DELETE", f"/storage/v1/bucket/{bucket}", key=self.keys.secret),
                    {200},
                    "DELETE of a stale bucket",
                )
            stamp = urllib.parse.quote(cutoff.isoformat())
            self.expect(
                self.request("DELETE", f"/rest/v1/{SMOKE_TABLE}?created_at=lt.{stamp}", key=self.keys.secret),
                {200, 204},
                f"DELETE of stale {SMOKE_TABLE} rows",
            )
            return f"swept {len(old_users)} users and {len(old_buckets)} buckets left by interrupted runs"

        return self._timed("sweep-stale", check)

    def auth_lifecycle(self) -> CheckResult:
        """Create, sign in, read the user, refresh, sign out (refresh revoked), delete."""

        def check() -> str:
            with self.temporary_user("auth") as user:
                session = self.sign_in(user)
                if self._current_user_id(session) != user.id:
                    raise CheckFailed("GET /auth/v1/user returned another user")
                refreshed = self.expect(
                    self.request(
                        "POST",
                        "/auth/v1/token?grant_type=refresh_token",
                        key=self.keys.public,
                        body={"refresh_token": session.refresh_token},
                    ),
                    {200},
                    "POST /auth/v1/token?grant_type=refresh_token",
                ).json()
                session = Session(access_token=refreshed["access_token"], refresh_token=refreshed["refresh_token"])
                if self._current_user_id(session) != user.id:
                    raise CheckFailed("the refreshed session belongs to another user")
                self.expect(
                    self.request("POST", "/auth/v1/logout", key=self.keys.public, token=session.access_token),
                    {204},
                    "POST /auth/v1/logout",
                )
                self.expect(
                    self.request(
                        "POST",
                        "/auth/v1/token?grant_type=refresh_token",
                        key=self.keys.public,
                        body={"refresh_token": session.refresh_token},
                    ),
                    REFUSED_GRANT,
                    "refresh after sign-out",
                )
            self.expect(
                self.request(
                    "POST",
                    "/auth/v1/token?grant_type=password",
                    key=self.keys.public,
                    body={"email": user.email, "password": user.password},
                ),
                REFUSED_GRANT,
                "sign-in of the deleted user",
            )
            return "created, signed in, refreshed, signed out (refresh refused), deleted (sign-in refused)"

        return self._timed("auth-lifecycle", check)

    def _visible_labels(self, *, key: str, token: str | None, expected: set[str], deadline: float) -> set[str]:
        """Reads go to the read-only PostgREST on the replicas: wait out replication lag,
        until `deadline`, for the expected rows; a wrong answer shows after the wait."""
        path = f"/rest/v1/{SMOKE_TABLE}?select=label&run_id=eq.{self.run_id}"
        while True:
            rows = self.expect(self.request("GET", path, key=key, token=token), {200}, f"GET {path}").json()
            seen = {row["label"] for row in rows}
            if seen == expected or time.monotonic() >= deadline:
                return seen
            time.sleep(0.2)

    def rest_rls(self) -> CheckResult:
        """The same rows through each key: RLS filters the public key and the signed-in user,
        the secret key bypasses it; the public key cannot write."""

        def check() -> str:
            path = f"/rest/v1/{SMOKE_TABLE}"
            with self.temporary_user("rest") as user:
                session = self.sign_in(user)
                rows = [
                    {"run_id": self.run_id, "label": "public", "is_public": True, "owner_id": None},
                    {"run_id": self.run_id, "label": "own", "is_public": False, "owner_id": user.id},
                    {"run_id": self.run_id, "label": "other", "is_public": False, "owner_id": str(uuid.uuid4())},
                ]
                # The DELETE in `finally` also covers an insert whose answer was lost.
                try:
                    self.expect(
                        self.request(
                            "POST", path, key=self.keys.secret, body=rows, headers={"Prefer": "return=minimal"}
                        ),
                        {201},
                        f"POST {path} (secret key)",
                    )
                    self.expect(
                        self.request(
                            "POST",
                            path,
                            key=self.keys.public,
                            body=[{"run_id": self.run_id, "label": "anon", "is_public": True}],
                            headers={"Prefer": "return=minimal"},
                        ),
                        REFUSED,
                        f"POST {path} (public key)",
                    )
                    # An altered session token must be refused, not served as the anonymous role.
                    tampered = session.access_token[:-2] + ("AA" if session.access_token[-2:] != "AA" else "BB")
                    self.expect(
                        self.request("GET", f"{path}?select=label", key=self.keys.public, token=tampered),
                        REFUSED,
                        f"GET {path} with an altered session token",
                    )
                    wanted = {
                        "secret key": (self.keys.secret, None, {"public", "own", "other"}),
                        "public key": (self.keys.public, None, {"public"}),
                        "signed-in user": (self.keys.public, session.access_token, {"public", "own"}),
                    }
                    wrong = {}
                    # One wait for the lag of one write: a caller whose rows are wrong does not
                    # make the next wait a whole timeout again.
                    deadline = time.monotonic() + self.timeout_seconds
                    for who, (key, token, expected) in wanted.items():
                        seen = self._visible_labels(key=key, token=token, expected=expected, deadline=deadline)
                        if seen != expected:
                            wrong[who] = sorted(seen)
                    if wrong:
                        raise CheckFailed(f"rows visible per caller differ from the policies: {wrong}")
                finally:
                    self.expect(
                        self.request("DELETE", f"{path}?run_id=eq.{self.run_id}", key=self.keys.secret),
                        {200, 204},
                        f"cleanup: DELETE {path} (secret key)",
                    )
            return "public key sees 1 of 3 rows, the user 2 (its own), the secret key all 3; public writes refused"

        return self._timed("rest-rls", check)

    def rest_openapi_root(self) -> CheckResult:
        """The schema document: always to the secret key; to the public key only where the
        gateway still allows it."""

        def check() -> str:
            document = self.expect(
                self.request("GET", "/rest/v1/", key=self.keys.secret), {200}, "GET /rest/v1/ (secret key)"
            ).json()
            if f"/{SMOKE_TABLE}" not in document.get("paths", {}):
                raise CheckFailed(f"the OpenAPI document does not list /{SMOKE_TABLE}: PostgREST's schema cache")
            public = self.request("GET", "/rest/v1/", key=self.keys.public)
            if self.openapi_root_public:
                self.expect(public, {200}, "GET /rest/v1/ (public key)")
                return "OpenAPI root served to both keys"
            self.expect(public, REFUSED, "GET /rest/v1/ (public key)")
            return "OpenAPI root served to the secret key, refused to the public key"

        return self._timed("rest-openapi-root", check)

    def storage_large_object(self) -> CheckResult:
        """A 7 MiB object into a private bucket, hidden from the public key, fetched back
        byte for byte through a signed URL without any key."""

        def check() -> str:
            bucket, name = self.bucket_name, "large.bin"
            data = os.urandom(LARGE_OBJECT_BYTES)
            self.expect(
                self.request(
                    "POST",
                    "/storage/v1/bucket",
                    key=self.keys.secret,
                    body={"id": bucket, "name": bucket, "public": False},
                ),
                {200},
                "POST /storage/v1/bucket (secret key)",
            )
            uploaded = False
            try:
                self.expect(
                    self.request("POST", f"/storage/v1/object/{bucket}/{name}", key=self.keys.secret, body=data),
                    {200},
                    f"upload of {LARGE_OBJECT_BYTES} bytes",
                )
                uploaded = True
                self.expect(
                    self.request("GET", f"/storage/v1/object/{bucket}/{name}", key=self.keys.public),
                    HIDDEN_OBJECT,
                    "GET of the private object (public key)",
                )
                signed = self.expect(
                    self.request(
                        "POST", f"/storage/v1/object/sign/{bucket}/{name}", key=self.keys.secret, body={"expiresIn": 60}
                    ),
                    {200},
                    "POST /storage/v1/object/sign (secret key)",
                ).json()["signedURL"]
                # storage-api answers the path below /storage/v1; older releases a full URL.
                url = signed if signed.startswith("http") else "/storage/v1" + signed
                fetched = self.expect(
                    self.request("GET", url, key=None, base_url="" if url.startswith("http") else None),
                    {200},
                    "GET of the signed URL (no key)",
                ).body
                if hashlib.sha256(fetched).digest() != hashlib.sha256(data).digest():
                    raise CheckFailed(f"the signed URL returned {len(fetched)} bytes that differ from the upload")
            finally:
                if uploaded:
                    self.expect(
                        self.request("DELETE", f"/storage/v1/object/{bucket}/{name}", key=self.keys.secret),
                        {200},
                        "cleanup: DELETE of the object (secret key)",
                    )
                self.expect(
                    self.request("DELETE", f"/storage/v1/bucket/{bucket}", key=self.keys.secret),
                    {200},
                    "cleanup: DELETE of the bucket (secret key)",
                )
            return f"{LARGE_OBJECT_BYTES} bytes up, hidden from the public key, identical through a signed URL"

        return self._timed("storage-large-object", check)

    def realtime_url(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = {"https": "wss", "http": "ws"}[parts.scheme]
        query = urllib.parse.urlencode({"apikey": self.keys.public, "vsn": "1.0.0"})
        return urllib.parse.urlunsplit((scheme, parts.netloc, "/realtime/v1/websocket", query, ""))

    def realtime_join(self) -> CheckResult:
        """Joins two channels with the Phoenix protocol, as supabase-js does: one with the
        connection's key alone, one with a signed-in user's token."""

        def check() -> str:
            with self.temporary_user("realtime") as user:
                session = self.sign_in(user)
                url = self.realtime_url()
                with connect(
                    url,
                    ssl=self.ssl_context if url.startswith("wss://") else None,
                    open_timeout=self.timeout_seconds,
                    close_timeout=1,
                ) as ws:
                    # Without access_token Realtime authorizes the join with the connection's
                    # key; an opaque key would not verify as a JWT inside the payload.
                    self._join(ws, f"realtime:smoke-{self.run_id}-key", ref="1", access_token=None)
                    self._join(ws, f"realtime:smoke-{self.run_id}-user", ref="2", access_token=session.access_token)
            return "joined with the key and with a user's token"

        return self._timed("realtime-join", check)

    def _join(self, ws: Any, topic: str, *, ref: str, access_token: str | None) -> None:
        payload: dict[str, Any] = {
            "config": {"broadcast": {"ack": False, "self": False}, "presence": {"key": ""}, "postgres_changes": []}
        }
        if access_token:
            payload["access_token"] = access_token
        ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": payload, "ref": ref, "join_ref": ref}))
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed(f"no phx_reply to the join of {topic} within {self.timeout_seconds}s")
            try:
                message = json.loads(ws.recv(timeout=remaining))
            except TimeoutError:
                raise CheckFailed(f"no phx_reply to the join of {topic} within {self.timeout_seconds}s") from None
            if message.get("event") != "phx_reply" or message.get("ref") != ref or message.get("topic") != topic:
                continue
            reply = message.get("payload") or {}
            if reply.get("status") != "ok":
                raise CheckFailed(f"join of {topic} refused: {json.dumps(reply.get('response'))[:200]}")
            return

    def function_hello(self) -> CheckResult:
        def check() -> str:
            name = f"smoke-{self.run_id}"
            body = self.expect(
                self.request("POST", "/functions/v1/hello", key=self.keys.public, body={"name": name}),
                {200},
                "POST /functions/v1/hello",
            ).json()
            # The greeting echoes this run's name, so no cached or default answer passes.
            if body != {"message": f"Hello {name}!"}:
                raise CheckFailed(f"POST /functions/v1/hello answered {json.dumps(body)[:200]}")
            return "hello answered this run's greeting"

        return self._timed("functions-hello", check)

    def admin_routes(self) -> CheckResult:
        """The admin surfaces refuse the public key (and no key) while the secret key gets
        through, so a refusal proves the rule and not a broken route; without a valid key
        the gateway answers nothing at all."""

        def check() -> str:
            probes: list[tuple[str, str | None, frozenset[int] | set[int], str | None]] = [
                (f"/rest/v1/{SMOKE_TABLE}?select=label", None, {401}, None),
                (f"/rest/v1/{SMOKE_TABLE}?select=label", INVALID_KEY, {401}, None),
                ("/auth/v1/settings", INVALID_KEY, {401}, None),
                ("/auth/v1/admin/users?per_page=1", self.keys.public, REFUSED, None),
                ("/auth/v1/admin/users?per_page=1", self.keys.secret, {200}, None),
                ("/pg/schemas", None, {401}, None),
                ("/pg/schemas", self.keys.public, REFUSED, None),
                ("/pg/schemas", self.keys.secret, {200}, None),
                ("/realtime/v1/api/tenants", self.keys.public, {403}, None),
                ("/realtime/v1/api/tenants", self.keys.secret, {403}, None),
            ]
            if self.studio_url:
                # Studio sits behind the dashboard's basic auth: an API key is no credential.
                probes += [
                    ("/", self.keys.public, {401}, self.studio_url),
                    ("/api/mcp", self.keys.secret, {403}, self.studio_url),
                ]
            for path, key, statuses, base in probes:
                who = {None: "no key", INVALID_KEY: "invalid key", self.keys.secret: "secret key"}.get(
                    key, "public key"
                )
                self.expect(
                    self.request("GET", path, key=key, base_url=base), statuses, f"GET {base or ''}{path} ({who})"
                )
            return f"{len(probes)} probes: admin routes refuse the public key and admit the secret key"

        return self._timed("admin-routes", check)

    def auth_jwks(self) -> CheckResult:
        """The signing keys' public half is open to anyone, and never a shared secret."""

        def check() -> str:
            document = self.expect(
                self.request("GET", "/auth/v1/.well-known/jwks.json", key=None),
                {200},
                "GET /auth/v1/.well-known/jwks.json (no key)",
            ).json()
            keys = document.get("keys")
            if not isinstance(keys, list):
                raise CheckFailed("the JWKS document has no keys list")
            # A symmetric key ("oct") in a public JWKS would hand out the means to forge tokens.
            if any(k.get("kty") == "oct" or "d" in k for k in keys):
                raise CheckFailed("the JWKS publishes secret key material")
            return f"JWKS open with {len(keys)} public keys, no secret material"

        return self._timed("auth-jwks", check)

    def run_all(self) -> list[CheckResult]:
        return [getattr(self, case)() for case in CASES]


CASES = (
    "sweep_stale",
    "auth_lifecycle",
    "auth_jwks",
    "rest_rls",
    "rest_openapi_root",
    "storage_large_object",
    "realtime_join",
    "function_hello",
    "admin_routes",
)


def api_keys_from_secrets_manager(secret_id: str, *, client: Any = None) -> list[ApiKeys]:
    """Every complete key pair in the API keys secret, opaque first."""
    client = client if client is not None else boto3.client("secretsmanager")
    stored = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
    stored = stored if isinstance(stored, dict) else {}
    found = [
        ApiKeys(kind=kind, public=stored[public], secret=stored[secret])
        for kind, (public, secret) in KEY_FIELDS.items()
        if stored.get(public) and stored.get(secret)
    ]
    if not found:
        pairs = " or ".join(f"{p} + {s}" for p, s in KEY_FIELDS.values())
        raise CheckFailed(f"{secret_id} holds no key pair ({pairs}): has the API key custom resource run?")
    return found


def api_keys_from_environment(environ: Mapping[str, str] = os.environ) -> list[ApiKeys]:
    return [
        ApiKeys(kind=kind, public=environ[public], secret=environ[secret])
        for kind, (public, secret) in KEY_ENV_VARS.items()
        if environ.get(public) and environ.get(secret)
    ]


@dataclass(frozen=True, kw_only=True)
class Target:
    api_url: str
    studio_url: str
    secret_id: str


def target_from_config(config_path: str | None, env_name: str) -> Target:
    """URLs and API keys secret name of an environment, from the organization config."""
    cfg = load_config(config_path)
    if env_name not in cfg.environments:
        raise CheckFailed(f"unknown environment {env_name!r}; one of {sorted(cfg.environments)}")
    env = cfg.environments[env_name]
    return Target(
        api_url=f"https://{api_host(env)}",
        studio_url=f"https://{studio_host(env)}",
        secret_id=secret_name(cfg, env_name, SecretKeys.API_KEYS),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", help="environment name in the config (gives URLs and the keys secret)")
    parser.add_argument("--config", help="organization config (default: config/default.yaml)")
    parser.add_argument("--url", help="API base URL, e.g. https://api.dev.example.com")
    parser.add_argument("--studio-url", help="Studio base URL (with --env: from config)")
    parser.add_argument("--public-key", help="publishable or anon key (default: environment, then Secrets Manager)")
    parser.add_argument("--secret-key", help="secret or service_role key (default: environment, then Secrets Manager)")
    parser.add_argument(
        "--openapi-root", choices=("public", "secret-only"), default="public" if OPENAPI_ROOT_PUBLIC else "secret-only"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    args = parser.parse_args(argv)

    url, studio_url, secret_id = args.url, args.studio_url, None
    if args.env:
        target = target_from_config(args.config, args.env)
        url, studio_url, secret_id = url or target.api_url, studio_url or target.studio_url, target.secret_id
    if args.public_key and args.secret_key:
        keysets = [ApiKeys(kind="given", public=args.public_key, secret=args.secret_key)]
    else:
        keysets = api_keys_from_environment()
        if not keysets and secret_id:
            keysets = api_keys_from_secrets_manager(secret_id)
    if not url or not keysets:
        parser.error("give --env, or --url with --public-key and --secret-key (or their environment variables)")

    failed: list[str] = []
    total = 0
    for keys in keysets:
        client = SmokeClient(
            base_url=url,
            keys=keys,
            studio_url=studio_url,
            openapi_root_public=args.openapi_root == "public",
            timeout_seconds=args.timeout,
        )
        for result in client.run_all():
            total += 1
            label = f"{keys.kind}/{result.name}"
            print(f"{'PASS' if result.ok else 'FAIL'}  {label:<28} {result.latency_ms:>8.1f} ms  {result.detail}")
            if not result.ok:
                failed.append(label)
    print(f"{total - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
