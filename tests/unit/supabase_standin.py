"""A local stand-in for a deployed platform's public API, for the smoke client's unit tests.

It enforces the rules the smoke suite relies on, so a client that sends the wrong key, token,
path or body fails: Kong's key-auth (the `apikey` header, or query parameter on the
websocket) and ACL groups, with opaque keys mapped to their role as the gateway maps them to
pre-signed JWTs; GoTrue's admin guard, password length, sessions, refresh-token rotation,
global sign-out and user deletion; PostgREST's row level security per role with rows reaching
the read replicas late; Storage's private buckets, size limit, signed URLs and refusal to drop
a bucket that still holds objects; the `hello` function's echo; Studio's basic auth; and
Realtime's Phoenix join behind the gateway, which relays the websocket as Kong does.
`Faults` breaks one rule at a time, so each smoke case is shown to fail when its rule breaks.
Test-only: nothing here ships.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import secrets
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from websockets.sync.server import serve

from ops.smoke.client import SMOKE_TABLE, ApiKeys

PASSWORD_MIN_LENGTH = 12  # config/model.py's default for GOTRUE_PASSWORD_MIN_LENGTH
FILE_SIZE_LIMIT = 50 * 1024 * 1024  # storage-api's FILE_SIZE_LIMIT as the charts set it
TABLE_COLUMNS = {"id", "run_id", "label", "is_public", "owner_id", "created_at"}
DASHBOARD = ("ops", "dashboard-password")


@dataclass(kw_only=True)
class Faults:
    rls_leaks: bool = False  # the public key sees every row
    table_missing: bool = False  # PostgREST's schema cache lacks the smoke table
    replica_lag_seconds: float = 0.0  # rows reach the read-only PostgREST this late
    logout_keeps_refresh: bool = False  # sign-out leaves refresh tokens usable
    body_limit: int | None = None  # a proxy in front refuses larger bodies
    signed_url_corrupts: bool = False  # a signed URL serves different bytes
    admin_open_to_public: bool = False  # /pg/ admits the anon group
    jwks_leaks_secret: bool = False  # the JWKS carries a symmetric key
    tampered_token_is_anon: bool = False  # PostgREST serves an invalid JWT as the anon role
    function_static: bool = False  # hello ignores its input
    openapi_root_public: bool = False  # True: the gateway also serves the root to the public key
    realtime: str = "ok"  # "ok", "error" (tenant not found) or "silent"
    hang: bool = False


@dataclass
class Principal:
    role: str
    user_id: str | None = None


@dataclass
class State:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # access token -> user id
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> user id
    rows: list[dict[str, Any]] = field(default_factory=list)
    buckets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    bucket_created: dict[str, str] = field(default_factory=dict)
    signed: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    joins: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def leftovers(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "rows": len(self.rows),
            "buckets": len(self.buckets),
            "objects": sum(len(b) for b in self.buckets.values()),
        }


def _jwt_like() -> str:
    return "eyJhbGciOiJFUzI1NiJ9." + secrets.token_urlsafe(24) + "." + secrets.token_urlsafe(16)


class Platform:
    """The gateway and services behind one HTTP port, Studio on another host (port)."""

    def __init__(self, keysets: list[ApiKeys], faults: Faults, hang_seconds: float = 3.0) -> None:
        self.faults = faults
        self.hang_seconds = hang_seconds
        # A hung service stays hung until the test stops the platform, not for all of hang_seconds:
        # stopping waits for the handlers, and a test has no reason to wait out a hang it saw.
        self.stopping = threading.Event()
        self.state = State()
        self.lock = threading.RLock()
        self.roles: dict[str, str] = {}
        for keys in keysets:
            self.roles[keys.public] = "anon"
            self.roles[keys.secret] = "service_role"
        self._servers: list[Any] = []

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Platform:
        self.realtime = serve(self._realtime_session, "127.0.0.1", 0)
        threading.Thread(target=self.realtime.serve_forever, daemon=True).start()
        self.gateway = self._http(self._gateway_handler())
        self.studio = self._http(self._studio_handler())
        return self

    def stop(self) -> None:
        self.stopping.set()
        for server in (self.gateway, self.studio):
            server.shutdown()
            server.server_close()
        self.realtime.shutdown()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.server_address[1]}"

    @property
    def studio_url(self) -> str:
        return f"http://127.0.0.1:{self.studio.server_address[1]}"

    def _http(self, handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        # Stopping waits up to one poll interval per server, and every test stops a platform.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return server

    # -- Kong ---------------------------------------------------------------------------

    def _gateway_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        platform = self

        class Gateway(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if platform.faults.body_limit is not None and length > platform.faults.body_limit:
                    _reply(self, 413, {"message": "Request Entity Too Large"})
                    return
                with platform.lock:
                    platform.state.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                if platform.faults.hang:
                    platform.stopping.wait(platform.hang_seconds)
                    return
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    platform._relay_websocket(self)
                    return
                status, payload = platform.route(self.command, self.path, self.headers, body)
                _reply(self, status, payload)

            do_GET = do_POST = do_DELETE = _serve

        return Gateway

    def route(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parts = urllib.parse.urlsplit(raw_path)
        path, query = parts.path, urllib.parse.parse_qs(parts.query)
        if path.startswith("/realtime/v1/api/tenants"):
            return 403, {"message": "Access is forbidden."}
        if path.startswith("/storage/v1/"):
            return self.storage(method, path.removeprefix("/storage/v1"), query, headers, body)
        if path.startswith("/functions/v1/"):
            return self.functions(method, path.removeprefix("/functions/v1"), query, headers, body)
        admin_only = path.startswith("/pg/") or (path == "/rest/v1/" and not self.faults.openapi_root_public)
        if path == "/auth/v1/.well-known/jwks.json":
            public = {"kty": "EC", "crv": "P-256", "kid": "k1", "x": "eA", "y": "eQ", "alg": "ES256"}
            return 200, {
                "keys": [public] + ([{"kty": "oct", "k": "c2VjcmV0"}] if self.faults.jwks_leaks_secret else [])
            }
        if not path.startswith(("/auth/v1/", "/rest/v1/", "/pg/")):
            return 404, {"message": "no Route matched with those values"}
        group = self.key_auth(headers.get("apikey"))
        if group is None:
            return 401, {"message": "Invalid authentication credentials"}
        if admin_only and group != "admin" and not (path.startswith("/pg/") and self.faults.admin_open_to_public):
            return 403, {"message": "You cannot consume this service"}
        if path.startswith("/pg/"):
            return 200, [{"name": "public"}, {"name": "storage"}]
        principal = self.principal(headers)
        if principal is None and self.faults.tampered_token_is_anon and path.startswith("/rest/v1/"):
            principal = Principal(role="anon")
        if principal is None:
            return 401, {"message": "invalid JWT"}
        if path.startswith("/auth/v1/"):
            return self.auth(method, path.removeprefix("/auth/v1"), query, principal, body)
        return self.rest(method, path.removeprefix("/rest/v1"), query, principal, body)

    def key_auth(self, key: str | None) -> str | None:
        role = self.roles.get(key or "")
        return None if role is None else ("admin" if role == "service_role" else "anon")

    def principal(self, headers: Any) -> Principal | None:
        """Who the bearer token says the caller is; the gateway has already swapped an opaque
        key for its role's JWT, and a user's session token passes through untouched."""
        scheme, _, token = (headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer" or not token:
            return None
        with self.lock:
            if token in self.roles:
                return Principal(role=self.roles[token])
            user_id = self.state.access.get(token)
        return Principal(role="authenticated", user_id=user_id) if user_id else None

    # -- GoTrue -------------------------------------------------------------------------

    def auth(self, method: str, path: str, query: dict, who: Principal, body: bytes) -> tuple[int, Any]:
        data = json.loads(body or b"{}")
        with self.lock:
            users = self.state.users
            if path.startswith("/admin/"):
                if who.role != "service_role":
                    return 403, {"msg": "User not allowed"}
                if method == "POST" and path == "/admin/users":
                    if any(u["email"] == data.get("email") for u in users.values()):
                        return 422, {"msg": "A user with this email address has already been registered"}
                    if len(data.get("password", "")) < PASSWORD_MIN_LENGTH:
                        return 422, {"msg": f"Password should be at least {PASSWORD_MIN_LENGTH} characters"}
                    user = {
                        "id": str(uuid.uuid4()),
                        "email": data["email"],
                        "password": data["password"],
                        "confirmed": bool(data.get("email_confirm")),
                        "created_at": _now(),
                    }
                    users[user["id"]] = user
                    return 200, {"id": user["id"], "email": user["email"], "aud": "authenticated"}
                if method == "GET" and path == "/admin/users":
                    # GoTrue's `filter` matches a part of the e-mail address.
                    needle = query.get("filter", [""])[0]
                    listed = [u for u in users.values() if needle in u["email"]]
                    return 200, {
                        "users": [{"id": u["id"], "email": u["email"], "created_at": u["created_at"]} for u in listed]
                    }
                if method == "DELETE" and path.startswith("/admin/users/"):
                    user_id = path.rsplit("/", 1)[1]
                    if users.pop(user_id, None) is None:
                        return 404, {"msg": "User not found"}
                    self._revoke(user_id, access=True, refresh=True)
                    return 200, {}
                return 404, {"msg": "not found"}
            if method == "POST" and path == "/token":
                grant = query.get("grant_type", [""])[0]
                if grant == "password":
                    match = [
                        u
                        for u in users.values()
                        if u["email"] == data.get("email") and u["password"] == data.get("password") and u["confirmed"]
                    ]
                    if not match:
                        return 400, {"error": "invalid_grant", "error_description": "Invalid login credentials"}
                    return 200, self._session(match[0]["id"])
                if grant == "refresh_token":
                    user_id = self.state.refresh.pop(data.get("refresh_token", ""), None)
                    if user_id is None:
                        return 400, {"error": "invalid_grant", "error_description": "Invalid Refresh Token"}
                    return 200, self._session(user_id)
                return 400, {"error": "unsupported_grant_type"}
            if who.user_id is None:
                return 403, {"msg": "invalid claim: missing sub claim"}
            if method == "GET" and path == "/user":
                return 200, {"id": who.user_id, "email": users[who.user_id]["email"]}
            if method == "POST" and path == "/logout":
                self._revoke(who.user_id, access=True, refresh=not self.faults.logout_keeps_refresh)
                return 204, None
        return 404, {"msg": "not found"}

    def _session(self, user_id: str) -> dict[str, Any]:
        access, refresh = _jwt_like(), secrets.token_urlsafe(12)
        self.state.access[access] = user_id
        self.state.refresh[refresh] = user_id
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "user": {"id": user_id, "email": self.state.users[user_id]["email"]},
        }

    def _revoke(self, user_id: str, *, access: bool, refresh: bool) -> None:
        for tokens, drop in ((self.state.access, access), (self.state.refresh, refresh)):
            if drop:
                for token in [t for t, owner in tokens.items() if owner == user_id]:
                    del tokens[token]

    # -- PostgREST ----------------------------------------------------------------------

    def rest(self, method: str, path: str, query: dict, who: Principal, body: bytes) -> tuple[int, Any]:
        if path == "/" and method == "GET":
            paths = {"/": {}} | ({} if self.faults.table_missing else {f"/{SMOKE_TABLE}": {}})
            return 200, {"swagger": "2.0", "info": {"title": "PostgREST API"}, "paths": paths}
        if path != f"/{SMOKE_TABLE}" or self.faults.table_missing:
            return 404, {"code": "PGRST205", "message": f"Could not find the table 'public.{path[1:]}'"}
        filters = {column: value[0].partition(".") for column, value in query.items() if column in TABLE_COLUMNS}
        if any(op not in ("eq", "lt") or (op == "lt" and c != "created_at") for c, (op, _, _) in filters.items()):
            return 400, {"code": "PGRST100", "message": "only eq. filters, and lt. on created_at, in this stand-in"}

        def matches(row: dict[str, Any]) -> bool:
            return all(
                str(row[c]) == v if op == "eq" else datetime.fromisoformat(row[c]) < datetime.fromisoformat(v)
                for c, (op, _, v) in filters.items()
            )

        denied = (401 if who.role == "anon" else 403), {"code": "42501", "message": "permission denied"}
        with self.lock:
            if method == "GET":
                now = time.monotonic()
                columns = query.get("select", ["*"])[0].split(",")
                if columns != ["*"] and not set(columns) <= TABLE_COLUMNS:
                    return 400, {"code": "42703", "message": f"column does not exist: {columns}"}
                visible = [r for r in self.state.rows if r["visible_at"] <= now and matches(r) and self._rls(who, r)]
                return 200, [{c: r[c] for c in (TABLE_COLUMNS if columns == ["*"] else columns)} for r in visible]
            if who.role != "service_role":
                return denied
            if method == "POST":
                rows = json.loads(body)
                for row in rows if isinstance(rows, list) else [rows]:
                    if not set(row) <= TABLE_COLUMNS or "run_id" not in row or "label" not in row:
                        return 400, {"code": "PGRST204", "message": f"columns not in the table: {sorted(row)}"}
                    try:
                        uuid.UUID(str(row.get("owner_id") or uuid.UUID(int=0)))
                    except ValueError:
                        return 400, {"code": "22P02", "message": "invalid input syntax for type uuid"}
                    visible_at = time.monotonic() + self.faults.replica_lag_seconds
                    self.state.rows.append(
                        {"id": str(uuid.uuid4()), "is_public": False, "owner_id": None, "created_at": _now()}
                        | row
                        | {"visible_at": visible_at}
                    )
                return 201, None
            if method == "DELETE":
                if not filters:
                    return 400, {"code": "21000", "message": "DELETE requires a WHERE clause"}
                self.state.rows = [r for r in self.state.rows if not matches(r)]
                return 204, None
        return 405, {"message": "method not allowed"}

    def _rls(self, who: Principal, row: dict[str, Any]) -> bool:
        if who.role == "service_role":
            return True
        if who.role == "anon":
            return bool(row["is_public"]) or self.faults.rls_leaks
        return bool(row["is_public"]) or row["owner_id"] == who.user_id

    # -- Storage ------------------------------------------------------------------------

    def storage(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, Any]:
        with self.lock:
            if method == "GET" and path.startswith("/object/sign/"):
                grant = self.state.signed.get(query.get("token", [""])[0])
                bucket, _, name = path.removeprefix("/object/sign/").partition("/")
                if grant is None or grant[:2] != (bucket, name) or grant[2] < time.monotonic():
                    return 400, {"error": "InvalidSignature"}
                data = self.state.buckets.get(bucket, {}).get(name)
                if data is None:
                    return 404, {"error": "not_found"}
                return 200, (data[::-1] if self.faults.signed_url_corrupts else data)
            who = self.principal(headers)
            if who is None:
                return 400, {"error": "Invalid JWT"}
            if who.role != "service_role":
                # No storage policy admits the API roles to these buckets: RLS hides them.
                return (400, {"error": "not_found"}) if method == "GET" else (403, {"error": "Unauthorized"})
            buckets = self.state.buckets
            if path == "/bucket" and method == "GET":
                return 200, [{"id": b, "name": b, "created_at": self.state.bucket_created[b]} for b in buckets]
            if path.startswith("/object/list/") and method == "POST":
                bucket = path.removeprefix("/object/list/")
                prefix = json.loads(body).get("prefix", "")
                return 200, [{"name": n} for n in buckets.get(bucket, {}) if n.startswith(prefix)]
            if path == "/bucket" and method == "POST":
                spec = json.loads(body)
                if spec.get("id") in buckets:
                    return 409, {"error": "Duplicate"}
                buckets[spec["id"]] = {}
                self.state.bucket_created[spec["id"]] = _now()
                return 200, {"name": spec["id"]}
            if path.startswith("/bucket/") and method == "DELETE":
                bucket = path.removeprefix("/bucket/")
                if bucket not in buckets:
                    return 404, {"error": "Bucket not found"}
                if buckets[bucket]:
                    return 409, {"error": "Bucket not empty"}
                del buckets[bucket]
                del self.state.bucket_created[bucket]
                return 200, {"message": "Successfully deleted"}
            if path.startswith("/object/sign/") and method == "POST":
                bucket, _, name = path.removeprefix("/object/sign/").partition("/")
                expires = json.loads(body).get("expiresIn")
                if not isinstance(expires, int) or expires <= 0:
                    return 400, {"error": "expiresIn must be a positive integer"}
                if name not in buckets.get(bucket, {}):
                    return 404, {"error": "not_found"}
                token = secrets.token_urlsafe(16)
                self.state.signed[token] = (bucket, name, time.monotonic() + expires)
                return 200, {"signedURL": f"/object/sign/{bucket}/{name}?token={token}"}
            if path.startswith("/object/"):
                bucket, _, name = path.removeprefix("/object/").partition("/")
                if bucket not in buckets:
                    return 404, {"error": "Bucket not found"}
                if method == "DELETE" and not name:
                    names = json.loads(body).get("prefixes", [])
                    return 200, [{"name": n} for n in names if buckets[bucket].pop(n, None) is not None]
                if method == "POST":
                    if len(body) > FILE_SIZE_LIMIT:
                        return 413, {"error": "Payload too large"}
                    if name in buckets[bucket]:
                        return 409, {"error": "Duplicate"}
                    buckets[bucket][name] = body
                    return 200, {"Key": f"{bucket}/{name}"}
                if method == "GET":
                    return (200, buckets[bucket][name]) if name in buckets[bucket] else (400, {"error": "not_found"})
                if method == "DELETE":
                    return (200, {}) if buckets[bucket].pop(name, None) is not None else (400, {"error": "not_found"})
        return 404, {"error": "not found"}

    # -- Edge runtime -------------------------------------------------------------------

    def functions(self, method: str, path: str, query: dict, headers: Any, body: bytes) -> tuple[int, Any]:
        if self.principal(headers) is None:
            return 401, {"msg": "Invalid JWT"}
        if path != "/hello":
            return 404, {"msg": "function not found"}
        name = query.get("name", ["world"])[0]
        if method == "POST" and "application/json" in (headers.get("Content-Type") or ""):
            given = json.loads(body or b"{}").get("name")
            name = given if isinstance(given, str) else name
        return 200, {"message": f"Hello {'world' if self.faults.function_static else name}!"}

    # -- Studio -------------------------------------------------------------------------

    def _studio_handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        expected = "Basic " + base64.b64encode(":".join(DASHBOARD).encode()).decode()

        class Studio(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/api/mcp"):
                    _reply(self, 403, {"message": "Access is forbidden."})
                elif self.headers.get("Authorization") != expected:
                    _reply(self, 401, {"message": "Unauthorized"}, {"WWW-Authenticate": 'Basic realm="kong"'})
                else:
                    _reply(self, 200, "<html>Studio</html>")

        return Studio

    # -- Realtime -----------------------------------------------------------------------

    def _relay_websocket(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        """Kong's websocket route: key-auth on the `apikey` query parameter, then a byte relay
        to Realtime with the path rewritten to /socket."""
        parts = urllib.parse.urlsplit(handler.path)
        key = urllib.parse.parse_qs(parts.query).get("apikey", [None])[0]
        if parts.path != "/realtime/v1/websocket" or self.key_auth(key) is None:
            _reply(handler, 401 if parts.path == "/realtime/v1/websocket" else 404, {"message": "refused"})
            return
        upstream = socket.create_connection(("127.0.0.1", self.realtime.socket.getsockname()[1]))
        head = [f"GET /socket/websocket?{parts.query} HTTP/1.1"] + [f"{k}: {v}" for k, v in handler.headers.items()]
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        downstream = handler.connection
        threading.Thread(target=_pump, args=(upstream, downstream), daemon=True).start()
        _pump(downstream, upstream)
        handler.close_connection = True

    def _realtime_session(self, ws: Any) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        key = query.get("apikey", [""])[0]
        if key not in self.roles:
            ws.close(code=1008)
            return
        for raw in ws:
            message = json.loads(raw)
            if message.get("event") != "phx_join":
                continue
            payload = message.get("payload") or {}
            token = payload.get("access_token")
            with self.lock:
                self.state.joins.append({"topic": message["topic"], "vsn": query.get("vsn"), "payload": payload})
                # Realtime verifies a payload token as a JWT: a role key that is a JWT or a
                # live session passes; an opaque key is no JWT and is refused.
                valid = token is None or token in self.state.access or (token in self.roles and token.startswith("eyJ"))
            # Realtime pushes other frames too; the client must skip them.
            ws.send(json.dumps({"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok"}, "ref": "99"}))
            ws.send(json.dumps({"topic": message["topic"], "event": "presence_state", "payload": {}, "ref": None}))
            if self.faults.realtime == "silent":
                self.stopping.wait(self.hang_seconds)
                ws.close()
                return
            if self.faults.realtime == "error":
                status, response = "error", {"reason": "Tenant not found"}
            elif not valid:
                status, response = "error", {"reason": "Invalid JWT"}
            else:
                status, response = "ok", {"postgres_changes": []}
            ws.send(
                json.dumps(
                    {
                        "topic": message["topic"],
                        "event": "phx_reply",
                        "payload": {"status": status, "response": response},
                        "ref": message["ref"],
                    }
                )
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    # Either side hanging up ends the relay; a reset is an ordinary way to hang up.
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _reply(
    handler: http.server.BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    if payload is None:
        data = b""
    elif isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
