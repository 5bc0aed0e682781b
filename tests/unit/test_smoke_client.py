"""The smoke client against a local stand-in of the platform (tests/unit/supabase_standin.py):
every case passes with either key kind and leaves nothing behind, and each case fails, still
cleaning up, when the rule it checks is broken."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from websockets.sync.client import connect

from config.loader import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import kong
from k8s_charts.supabase.props import SupabaseProps
from ops.smoke.client import (
    CASES,
    KEY_ENV_VARS,
    LARGE_OBJECT_BYTES,
    OPENAPI_ROOT_PUBLIC,
    STALE_AFTER_SECONDS,
    ApiKeys,
    CheckFailed,
    SmokeClient,
    api_keys_from_environment,
    api_keys_from_secrets_manager,
    main,
    target_from_config,
)
from tests.conftest import ROOT
from tests.unit.supabase_standin import Faults, Platform

# Most of its time is waiting out the client's timeouts.
pytestmark = pytest.mark.waits

LEGACY = ApiKeys(
    kind="legacy",
    public="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.YW5vbi1zaWduYXR1cmU",
    secret="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VydmljZS1zaWc",
)
OPAQUE = ApiKeys(kind="opaque", public="sb_publishable_Zm9vYmFyYmF6cXV4", secret="sb_secret_c2VjcmV0LXNlY3JldC1rZXk")
KEYSETS = [LEGACY, OPAQUE]
TIMEOUT = 1.0
# The tests whose failure is a wait (a hung service, rest-rls waiting out replication lag before it
# judges the rows it reads) take the whole timeout; they run with a shorter one.
WAIT_TIMEOUT = TIMEOUT / 2
CASE_NAMES = {
    "sweep_stale": "sweep-stale",
    "auth_lifecycle": "auth-lifecycle",
    "auth_jwks": "auth-jwks",
    "rest_rls": "rest-rls",
    "rest_openapi_root": "rest-openapi-root",
    "storage_large_object": "storage-large-object",
    "realtime_join": "realtime-join",
    "function_hello": "functions-hello",
    "admin_routes": "admin-routes",
}
NOTHING_LEFT = {"users": 0, "rows": 0, "buckets": 0, "objects": 0}


@pytest.fixture
def platform(request):
    faults = getattr(request, "param", None) or Faults()
    running = Platform(KEYSETS, faults, hang_seconds=TIMEOUT * 3).start()
    try:
        yield running
    finally:
        running.stop()


def client(platform: Platform, keys: ApiKeys, **overrides) -> SmokeClient:
    settings = {
        "base_url": platform.url,
        "keys": keys,
        "studio_url": platform.studio_url,
        "openapi_root_public": platform.faults.openapi_root_public,
        "timeout_seconds": TIMEOUT,
    } | overrides
    return SmokeClient(**settings)


def assert_no_secret_in(text: str, keys: ApiKeys) -> None:
    assert keys.public not in text and keys.secret not in text
    assert not re.search(r"eyJ[\w-]+\.[\w-]+\.", text), text


@pytest.mark.parametrize("keys", KEYSETS, ids=lambda k: k.kind)
def test_every_case_passes_with_either_key_kind_and_leaves_nothing_behind(platform, keys):
    results = client(platform, keys).run_all()
    assert [(r.name, r.ok) for r in results] == [(CASE_NAMES[c], True) for c in CASES], results
    assert platform.state.leftovers() == NOTHING_LEFT
    for result in results:
        assert_no_secret_in(result.detail, keys)
        assert 0 < result.latency_ms < TIMEOUT * 1000


@pytest.mark.parametrize("keys", KEYSETS, ids=lambda k: k.kind)
def test_requests_carry_the_key_as_supabase_js_does(platform, keys):
    smoke = client(platform, keys)
    assert smoke.auth_lifecycle().ok and smoke.function_hello().ok
    sent = platform.state.requests
    assert sent and all(r["headers"].get("apikey") in (keys.public, keys.secret) for r in sent)
    admin = [r for r in sent if r["path"].startswith("/auth/v1/admin/")]
    assert admin and all(r["headers"]["apikey"] == keys.secret for r in admin)
    # The user's own calls carry the public key beside the user's session token.
    user = [r for r in sent if r["path"] in ("/auth/v1/user", "/auth/v1/logout")]
    assert user and all(
        r["headers"]["apikey"] == keys.public and r["headers"]["authorization"] not in (f"Bearer {keys.public}",)
        for r in user
    )


@pytest.mark.parametrize("keys", KEYSETS, ids=lambda k: k.kind)
def test_realtime_joins_with_the_key_and_with_a_user_token(platform, keys):
    result = client(platform, keys).realtime_join()
    assert result.ok, result.detail
    key_join, user_join = platform.state.joins
    assert key_join["vsn"] == ["1.0.0"] and "access_token" not in key_join["payload"]
    assert user_join["payload"]["access_token"] not in (keys.public, keys.secret)
    assert platform.state.leftovers() == NOTHING_LEFT


def test_the_stand_in_refuses_an_opaque_key_as_a_realtime_token(platform):
    """The reason the key-only join sends no access_token: an opaque key is no JWT."""
    smoke = client(platform, OPAQUE)
    with connect(smoke.realtime_url(), open_timeout=TIMEOUT) as ws, pytest.raises(CheckFailed, match="Invalid JWT"):
        smoke._join(ws, "realtime:probe", ref="1", access_token=OPAQUE.public)


BROKEN = [
    (Faults(logout_keeps_refresh=True), "auth_lifecycle", "refresh after sign-out answered 200"),
    (Faults(rls_leaks=True), "rest_rls", "'public key': ['other', 'own', 'public']"),
    (Faults(tampered_token_is_anon=True), "rest_rls", "with an altered session token answered 200"),
    (Faults(jwks_leaks_secret=True), "auth_jwks", "publishes secret key material"),
    (Faults(table_missing=True), "rest_rls", "answered 404"),
    (Faults(replica_lag_seconds=TIMEOUT * 2), "rest_rls", "differ from the policies"),
    (Faults(table_missing=True), "rest_openapi_root", "does not list /smoke_rows"),
    (Faults(body_limit=6 * 1000 * 1000), "storage_large_object", "answered 413"),
    (Faults(signed_url_corrupts=True), "storage_large_object", "differ from the upload"),
    (Faults(realtime="error"), "realtime_join", "Tenant not found"),
    (Faults(function_static=True), "function_hello", "Hello world!"),
    (Faults(admin_open_to_public=True), "admin_routes", "GET /pg/schemas (public key) answered 200"),
]


@pytest.mark.parametrize(
    ("platform", "case", "reason"), BROKEN, indirect=["platform"], ids=[f"{c}-{r[:24]}" for _, c, r in BROKEN]
)
@pytest.mark.parametrize("keys", KEYSETS, ids=lambda k: k.kind)
def test_each_case_fails_when_its_rule_breaks_and_still_cleans_up(platform, case, reason, keys):
    smoke = client(platform, keys, timeout_seconds=WAIT_TIMEOUT if case == "rest_rls" else TIMEOUT)
    result = getattr(smoke, case)()
    assert not result.ok and reason in result.detail, result.detail
    assert_no_secret_in(result.detail, keys)
    assert platform.state.leftovers() == NOTHING_LEFT


@pytest.mark.parametrize("platform", [Faults(replica_lag_seconds=TIMEOUT / 3)], indirect=True)
def test_the_sweep_removes_only_what_interrupted_runs_left_long_ago(platform):
    old = (datetime.now(UTC) - timedelta(seconds=STALE_AFTER_SECONDS + 60)).isoformat()
    new = datetime.now(UTC).isoformat()
    state = platform.state
    for user_id, email, created in [
        ("u-stale", "smoke-deadbeef-auth@example.com", old),
        ("u-concurrent", "smoke-cafebabe-rest@example.com", new),
        ("u-customer", "smoke-deadbeef-auth@customer.example", old),
        ("u-other", "alice@example.com", old),
    ]:
        state.users[user_id] = {"id": user_id, "email": email, "password": "x" * 16, "confirmed": True}
        state.users[user_id]["created_at"] = created
    for bucket, created in [("smoke-deadbeef", old), ("smoke-cafebabe", new), ("avatars", old)]:
        state.buckets[bucket] = {"large.bin": b"x"}
        state.bucket_created[bucket] = created
    for run_id, created in [("deadbeef", old), ("cafebabe", new)]:
        state.rows.append(
            {"id": run_id, "run_id": run_id, "label": "public", "is_public": True, "owner_id": None}
            | {"created_at": created, "visible_at": 0}
        )
    result = client(platform, LEGACY).sweep_stale()
    assert result.ok and result.detail.startswith("swept 1 users and 1 buckets"), result.detail
    assert sorted(state.users) == ["u-concurrent", "u-customer", "u-other"]
    assert sorted(state.buckets) == ["avatars", "smoke-cafebabe"]
    assert [r["run_id"] for r in state.rows] == ["cafebabe"]


def test_rows_reaching_the_replicas_late_are_waited_for(platform):
    assert client(platform, LEGACY).rest_rls().ok


@pytest.mark.parametrize("platform", [Faults(openapi_root_public=False)], indirect=True)
@pytest.mark.parametrize("keys", KEYSETS, ids=lambda k: k.kind)
def test_openapi_root_follows_the_gateway_rule(platform, keys):
    assert client(platform, keys, openapi_root_public=False).rest_openapi_root().ok
    wrong = client(platform, keys, openapi_root_public=True).rest_openapi_root()
    assert not wrong.ok and "GET /rest/v1/ (public key) answered 403" in wrong.detail


def test_openapi_root_expectation_matches_the_rendered_gateway():
    """OPENAPI_ROOT_PUBLIC states what Kong does with GET /rest/v1/ and the anon group; when
    the route table changes, flip it (and the stand-in's default) with it."""
    cfg = load_config()
    props = SupabaseProps.from_config(cfg, "dev", from_config(cfg, "dev"))
    config = kong.declarative_config(props, collections.defaultdict(lambda: "placeholder"))
    serving = []
    for service in config["services"]:
        for route in service["routes"]:
            regex = [p for p in route["paths"] if p.startswith("~")]
            prefix = [p for p in route["paths"] if not p.startswith("~") and "/rest/v1/".startswith(p)]
            if "GET" not in route.get("methods", ["GET"]) or route.get("hosts"):
                continue
            if any(re.fullmatch(p[1:], "/rest/v1/") for p in regex) or prefix:
                serving.append((bool(regex), max((len(p) for p in prefix), default=0), service))
    assert serving, "no Kong route serves GET /rest/v1/"
    # Kong matches regex paths before prefix paths, and the longest prefix first.
    chosen = max(serving, key=lambda s: (s[0], s[1]))[2]
    plugins = {p["name"]: p.get("config", {}) for p in chosen["plugins"]}
    public = "key-auth" in plugins and kong.GROUP_ANON in plugins["acl"]["allow"]
    assert public is OPENAPI_ROOT_PUBLIC, (
        f"Kong's route {chosen['name']} gives the public key the OpenAPI root: {public}; set "
        "ops.smoke.client.OPENAPI_ROOT_PUBLIC (and the stand-in's Faults.openapi_root_public) to match"
    )
    assert Faults().openapi_root_public is OPENAPI_ROOT_PUBLIC


def test_a_wrong_key_fails_every_case_without_leaking_it(platform):
    wrong = ApiKeys(kind="legacy", public="sb_publishable_not_the_key", secret="eyJ.not.the-service-key")
    results = [r for r in client(platform, wrong).run_all() if r.name != "auth-jwks"]  # open to anyone
    assert [r.ok for r in results] == [False] * (len(CASES) - 1)
    # Each case stops at its first request: Kong's key-auth (401) or Storage's JWT check (400).
    assert all(re.search(r"answered 40[01]", r.detail) for r in results), results
    for result in results:
        assert_no_secret_in(result.detail, wrong)


@pytest.mark.parametrize("platform", [Faults(hang=True)], indirect=True)
def test_a_hanging_api_fails_within_the_timeout(platform):
    started = time.monotonic()
    result = client(platform, LEGACY, timeout_seconds=WAIT_TIMEOUT).function_hello()
    assert not result.ok and "timed out" in result.detail
    assert time.monotonic() - started < WAIT_TIMEOUT * 2


@pytest.mark.parametrize("platform", [Faults(realtime="silent")], indirect=True)
def test_realtime_join_without_reply_fails_within_the_timeout_and_deletes_its_user(platform):
    result = client(platform, LEGACY, timeout_seconds=WAIT_TIMEOUT).realtime_join()
    assert not result.ok and "no phx_reply" in result.detail
    assert len(platform.state.joins) == 1
    assert WAIT_TIMEOUT * 1000 <= result.latency_ms < WAIT_TIMEOUT * 2500
    assert platform.state.leftovers() == NOTHING_LEFT


def test_realtime_url_follows_the_api_scheme():
    smoke = SmokeClient(base_url="https://api.dev.supabase.example.com", keys=OPAQUE)
    assert smoke.realtime_url() == (
        f"wss://api.dev.supabase.example.com/realtime/v1/websocket?apikey={OPAQUE.public}&vsn=1.0.0"
    )


def test_unreachable_api_fails_fast():
    result = SmokeClient(base_url="http://127.0.0.1:9", keys=LEGACY, timeout_seconds=TIMEOUT).function_hello()
    assert not result.ok and "refused" in result.detail.lower()


def test_the_large_object_is_above_six_megabytes():
    assert LARGE_OBJECT_BYTES > 6 * 1000 * 1000


def test_target_comes_from_config():
    target = target_from_config(None, "dev")
    assert target.api_url == "https://api.dev.supabase.example.com"
    assert target.studio_url == "https://studio.dev.supabase.example.com"
    assert target.secret_id == "supabase/dev/api-keys"
    with pytest.raises(CheckFailed, match="unknown environment"):
        target_from_config(None, "qa")


def test_every_key_pair_in_secrets_manager_is_found_opaque_first(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    secret_id = target_from_config(None, "dev").secret_id
    with mock_aws():
        sm = boto3.client("secretsmanager")
        legacy_only = {"anon_key": LEGACY.public, "service_role_key": LEGACY.secret, "metrics_token": "m"}
        sm.create_secret(Name=secret_id, SecretString=json.dumps(legacy_only))
        assert api_keys_from_secrets_manager(secret_id) == [LEGACY]
        both = legacy_only | {"publishable_key": OPAQUE.public, "secret_key": OPAQUE.secret}
        sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(both))
        assert api_keys_from_secrets_manager(secret_id, client=sm) == [OPAQUE, LEGACY]
        # Half a pair is no pair: the suite needs both keys of a kind.
        sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"anon_key": LEGACY.public}))
        with pytest.raises(CheckFailed, match="holds no key pair"):
            api_keys_from_secrets_manager(secret_id, client=sm)


def test_key_pairs_from_the_environment():
    environ = {
        KEY_ENV_VARS["legacy"][0]: LEGACY.public,
        KEY_ENV_VARS["legacy"][1]: LEGACY.secret,
        KEY_ENV_VARS["opaque"][0]: OPAQUE.public,
    }
    assert api_keys_from_environment(environ) == [LEGACY]


def test_cli_runs_every_case_for_each_key_kind_and_reports_failures(platform, capsys, monkeypatch):
    for kind in KEYSETS:
        public_var, secret_var = KEY_ENV_VARS[kind.kind]
        monkeypatch.setenv(public_var, kind.public)
        monkeypatch.setenv(secret_var, kind.secret)
    args = ["--url", platform.url, "--studio-url", platform.studio_url, "--timeout", str(TIMEOUT)]
    assert main(args) == 0
    out = capsys.readouterr().out
    total = 2 * len(CASES)
    assert out.count("PASS") == total and "opaque/realtime-join" in out and "legacy/admin-routes" in out
    assert out.strip().endswith(f"{total} passed, 0 failed")
    platform.faults.realtime = "error"
    assert main([*args, "--public-key", LEGACY.public, "--secret-key", LEGACY.secret]) == 1
    out = capsys.readouterr().out
    assert "FAIL  given/realtime-join" in out and out.strip().endswith(f"{len(CASES) - 1} passed, 1 failed")
    for keys in KEYSETS:
        assert_no_secret_in(out, keys)
    assert platform.state.leftovers() == NOTHING_LEFT


def test_the_live_suite_runs_every_case_per_key_kind_against_the_stand_in(platform):
    """The pipeline's own command, pointed at the stand-in: the suite's settings reach the client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "SMOKE_"))}
    env |= {"SUPABASE_URL": platform.url, "SUPABASE_STUDIO_URL": platform.studio_url, "SMOKE_TIMEOUT": str(TIMEOUT)}
    for keys in KEYSETS:
        env |= dict(zip(KEY_ENV_VARS[keys.kind], (keys.public, keys.secret), strict=True))
    run = subprocess.run(
        # The pipeline's command; --confcutdir spares the root conftest's CDK import, which
        # the smoke suite does not use.
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-q",
            "-m",
            "smoke",
            "--confcutdir=tests/smoke",
            "tests/smoke",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert f"{2 * len(CASES)} passed" in run.stdout
    assert platform.state.leftovers() == NOTHING_LEFT
