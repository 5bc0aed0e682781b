"""The smoke client against local stand-ins: a healthy API, a broken one, and Realtime servers
that accept, refuse or ignore a Phoenix join."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse

import boto3
import pytest
from moto import mock_aws
from websockets.sync.server import serve

from ops.smoke.client import CheckFailed, SmokeClient, anon_key_from_secrets_manager, main, target_from_config

ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl"
TIMEOUT = 1.0

HEALTHY = {
    "/auth/v1/health": (
        200,
        {
            "version": "v2.189.0",
            "name": "GoTrue",
            "description": "GoTrue is a user registration and authentication API",
        },
    ),
    "/rest/v1/": (200, {"swagger": "2.0", "info": {"title": "PostgREST API"}, "paths": {"/": {}, "/todos": {}}}),
    "/storage/v1/status": (200, None),
    "/storage/v1/bucket": (200, [{"id": "avatars", "name": "avatars", "public": True}]),
    "/functions/v1/hello": (200, "Hello from Edge Functions!"),
}
BROKEN = {
    "/auth/v1/health": (200, "<html>upstream connect error</html>"),
    "/rest/v1/": (503, {"message": "no database connection"}),
    "/storage/v1/status": (502, None),
    "/storage/v1/bucket": (200, {"statusCode": "500", "error": "internal"}),
    "/functions/v1/hello": (500, {"msg": "InvalidWorkerCreation"}),
}


def _http_server(routes: dict, *, hang: bool = False):
    seen: list[dict] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(
                {
                    "path": self.path,
                    "apikey": self.headers.get("apikey"),
                    "authorization": self.headers.get("Authorization"),
                }
            )
            if hang:
                time.sleep(TIMEOUT * 3)
                return
            # Kong's key-auth: no or a wrong key is a 401 before any service is reached.
            if self.headers.get("apikey") != ANON_KEY or self.headers.get("Authorization") != f"Bearer {ANON_KEY}":
                status, body = 401, {"message": "Invalid authentication credentials"}
            else:
                status, body = routes.get(self.path, (404, {"message": "no Route matched"}))
            data = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.daemon_threads = True
    # A short poll interval keeps shutdown() in teardown from idling half a second.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, seen


@pytest.fixture
def http_api(request):
    server, seen = _http_server(**request.param)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _phoenix_server(mode: str):
    """Realtime stand-in speaking Phoenix JSON v1: replies ok, error, or never."""
    joins: list[dict] = []
    released = threading.Event()

    def handle(ws):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(ws.request.path).query)
        if urllib.parse.urlsplit(ws.request.path).path != "/realtime/v1/websocket" or query.get("apikey") != [ANON_KEY]:
            ws.close(code=1008)
            return
        for raw in ws:
            message = json.loads(raw)
            if message["event"] != "phx_join":
                continue
            joins.append({"topic": message["topic"], "vsn": query.get("vsn"), "payload": message["payload"]})
            # Realtime pushes other frames too; the client must skip them.
            ws.send(
                json.dumps(
                    {"topic": "phoenix", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "99"}
                )
            )
            if mode == "silent":
                # Hang up well after the client's deadline: a client that waits unbounded
                # then shows a latency far past its timeout instead of hanging the suite.
                released.wait(TIMEOUT * 3)
                ws.close()
                return
            status, response = (
                ("ok", {"postgres_changes": []}) if mode == "ok" else ("error", {"reason": "Tenant not found"})
            )
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

    server = serve(handle, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, joins, released


@pytest.fixture
def realtime(request):
    server, joins, released = _phoenix_server(request.param)
    try:
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", joins
    finally:
        released.set()
        server.shutdown()


HTTP_CHECKS = ["auth_health", "rest_root", "storage_status", "storage_buckets", "function_hello"]


@pytest.mark.parametrize("http_api", [{"routes": HEALTHY}], indirect=True)
@pytest.mark.parametrize("check", HTTP_CHECKS)
def test_http_checks_pass_against_a_healthy_api(http_api, check):
    url, seen = http_api
    result = getattr(SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT), check)()
    assert result.ok, result.detail
    assert 0 < result.latency_ms < TIMEOUT * 1000
    assert seen[-1]["apikey"] == ANON_KEY and seen[-1]["authorization"] == f"Bearer {ANON_KEY}"


@pytest.mark.parametrize("http_api", [{"routes": BROKEN}], indirect=True)
@pytest.mark.parametrize("check", HTTP_CHECKS)
def test_http_checks_fail_against_a_broken_api(http_api, check):
    url, _ = http_api
    result = getattr(SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT), check)()
    assert not result.ok


@pytest.mark.parametrize("http_api", [{"routes": HEALTHY}], indirect=True)
def test_a_wrong_key_fails_every_http_check(http_api):
    url, _ = http_api
    client = SmokeClient(base_url=url, anon_key="not-the-key", timeout_seconds=TIMEOUT)
    results = [getattr(client, check)() for check in HTTP_CHECKS]
    assert [r.ok for r in results] == [False] * len(HTTP_CHECKS)
    assert all("401" in r.detail for r in results)


@pytest.mark.parametrize("http_api", [{"routes": HEALTHY, "hang": True}], indirect=True)
def test_a_hanging_api_fails_within_the_timeout(http_api):
    url, _ = http_api
    started = time.monotonic()
    result = SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT).auth_health()
    assert not result.ok and "timed out" in result.detail
    assert time.monotonic() - started < TIMEOUT * 2


@pytest.mark.parametrize("realtime", ["ok"], indirect=True)
def test_realtime_join_passes_when_the_channel_replies_ok(realtime):
    url, joins = realtime
    result = SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT).realtime_join()
    assert result.ok, result.detail
    assert joins == [{"topic": "realtime:smoke", "vsn": ["1.0.0"], "payload": joins[0]["payload"]}]
    assert joins[0]["payload"]["access_token"] == ANON_KEY


@pytest.mark.parametrize("realtime", ["error"], indirect=True)
def test_realtime_join_fails_on_an_error_reply_without_leaking_the_key(realtime):
    url, _ = realtime
    result = SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT).realtime_join()
    assert not result.ok and "Tenant not found" in result.detail
    assert ANON_KEY not in result.detail


@pytest.mark.parametrize("realtime", ["silent"], indirect=True)
def test_realtime_join_without_reply_fails_within_the_timeout(realtime):
    url, joins = realtime
    result = SmokeClient(base_url=url, anon_key=ANON_KEY, timeout_seconds=TIMEOUT).realtime_join()
    assert not result.ok
    assert len(joins) == 1
    assert TIMEOUT * 1000 <= result.latency_ms < TIMEOUT * 2000


@pytest.mark.parametrize("realtime", ["ok"], indirect=True)
def test_realtime_rejects_a_wrong_key(realtime):
    url, joins = realtime
    result = SmokeClient(base_url=url, anon_key="wrong", timeout_seconds=TIMEOUT).realtime_join()
    assert not result.ok and joins == []


def test_realtime_url_follows_the_api_scheme():
    client = SmokeClient(base_url="https://api.dev.supabase.example.com", anon_key="k.e.y")
    assert client.realtime_url() == "wss://api.dev.supabase.example.com/realtime/v1/websocket?apikey=k.e.y&vsn=1.0.0"


def test_unreachable_api_fails_fast():
    result = SmokeClient(base_url="http://127.0.0.1:9", anon_key=ANON_KEY, timeout_seconds=TIMEOUT).storage_status()
    assert not result.ok and "refused" in result.detail.lower()


def test_target_and_anon_key_come_from_config_and_secrets_manager(monkeypatch):
    url, secret_id = target_from_config(None, "dev")
    assert (url, secret_id) == ("https://api.dev.supabase.example.com", "supabase/dev/api-keys")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name=secret_id, SecretString=json.dumps({"anon_key": ANON_KEY, "service_role_key": "x"}))
        assert anon_key_from_secrets_manager(secret_id) == ANON_KEY
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"service_role_key": "x"}))
        with pytest.raises(CheckFailed, match="holds no anon_key"):
            anon_key_from_secrets_manager(secret_id, client=client)


@pytest.mark.parametrize("http_api", [{"routes": HEALTHY}], indirect=True)
def test_cli_exit_code_reports_failures(http_api, capsys, monkeypatch):
    url, _ = http_api
    monkeypatch.delenv("SUPABASE_ANON_KEY", raising=False)
    # The HTTP stand-in has no websocket endpoint, so exactly the Realtime check fails.
    assert main(["--url", url, "--anon-key", ANON_KEY, "--timeout", str(TIMEOUT)]) == 1
    out = capsys.readouterr().out
    assert out.count("PASS") == 5 and "FAIL  realtime-join" in out
    assert ANON_KEY not in out
    assert out.strip().endswith("5 passed, 1 failed")
