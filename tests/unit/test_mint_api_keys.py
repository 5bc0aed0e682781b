"""The API key minter: tokens checked by PyJWT (an independent implementation), secrets in moto."""

from __future__ import annotations

import base64
import json

import boto3
import jwt
import pytest
from moto import mock_aws

from ops.mint_api_keys import handler

SECRET = "k" * 20 + "0123456789abcdefghijklmnopqrstuv"  # 52 characters
NOW = 1_700_000_000  # fixed and in the past: PyJWT rejects an iat in the future
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        jwt_arn = client.create_secret(Name="supabase/dev/jwt", SecretString=json.dumps({"secret": SECRET}))["ARN"]
        keys_arn = client.create_secret(Name="supabase/dev/api-keys")["ARN"]
        yield client, jwt_arn, keys_arn


def settings(jwt_arn: str, keys_arn: str, **overrides) -> handler.MintSettings:
    return handler.MintSettings(jwt_secret_arn=jwt_arn, api_keys_secret_arn=keys_arn, **overrides)


def stored(client, arn: str) -> dict:
    return json.loads(client.get_secret_value(SecretId=arn)["SecretString"])


def versions(client, arn: str) -> int:
    return len(client.list_secret_version_ids(SecretId=arn)["Versions"])


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class TestTokens:
    def test_minted_keys_verify_with_pyjwt_and_carry_supabase_claims(self):
        keys = handler.mint_keys(SECRET, issuer="supabase", expiry_days=3650, now=NOW)
        assert set(keys) == {"anon_key", "service_role_key"}
        for field, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
            assert jwt.get_unverified_header(keys[field]) == {"alg": "HS256", "typ": "JWT"}
            claims = jwt.decode(
                keys[field],
                SECRET,
                algorithms=["HS256"],
                issuer="supabase",
                options={"require": ["exp", "iat", "iss", "role"], "verify_iat": False},
            )
            assert claims == {"role": role, "iss": "supabase", "iat": NOW, "exp": NOW + 3650 * 86400}

    def test_expired_key_is_rejected_by_pyjwt(self):
        token = handler.mint_keys(SECRET, issuer="supabase", expiry_days=1, now=NOW - 2 * 86400)["anon_key"]
        with pytest.raises(jwt.ExpiredSignatureError):
            jwt.decode(token, SECRET, algorithms=["HS256"])

    def test_keys_do_not_verify_with_another_secret(self):
        token = handler.mint_keys(SECRET, issuer="supabase", expiry_days=30, now=NOW)["anon_key"]
        other = "x" * 40
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, other, algorithms=["HS256"], options={"verify_exp": False})
        assert handler.verified_claims(token, other) is None

    def test_tampered_claims_fail_both_verifiers(self):
        token = handler.mint_keys(SECRET, issuer="supabase", expiry_days=30, now=NOW)["anon_key"]
        header, _, signature = token.split(".")
        forged = f"{header}.{_b64({'role': 'service_role', 'iss': 'supabase', 'iat': NOW, 'exp': NOW + 30 * 86400})}.{signature}"
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(forged, SECRET, algorithms=["HS256"], options={"verify_exp": False})
        assert handler.verified_claims(forged, SECRET) is None
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        assert handler.verified_claims(flipped, SECRET) is None

    def test_unsigned_and_malformed_tokens_are_refused(self):
        unsigned = jwt.encode({"role": "service_role", "iss": "supabase"}, None, algorithm="none")
        assert handler.verified_claims(unsigned, SECRET) is None
        for junk in ("", "a.b", "a.b.c.d", "!!!.???.***"):
            assert handler.verified_claims(junk, SECRET) is None

    def test_own_verifier_accepts_pyjwt_signed_tokens(self):
        token = jwt.encode({"role": "anon", "iss": "supabase", "iat": NOW, "exp": NOW + 60}, SECRET, algorithm="HS256")
        assert handler.verified_claims(token, SECRET) == {
            "role": "anon",
            "iss": "supabase",
            "iat": NOW,
            "exp": NOW + 60,
        }


class TestJwtSecret:
    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (json.dumps({"secret": "s" * 31}), "31 characters long; Supabase needs at least 32"),
            (json.dumps({"secret": ""}), 'no "secret" field'),
            (json.dumps({"password": "p" * 40}), 'no "secret" field'),
            ("not json", "not a JSON object"),
            (json.dumps({"secret": handler.PUBLIC_DEMO_JWT_SECRET}), "public demo value"),
        ],
    )
    def test_unusable_secret_is_a_clear_error_without_the_value(self, aws, value, message):
        client, jwt_arn, keys_arn = aws
        client.put_secret_value(SecretId=jwt_arn, SecretString=value)
        with pytest.raises(handler.MintError, match=message) as err:
            handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        assert "sssss" not in str(err.value) and "ppppp" not in str(err.value)
        assert versions(client, keys_arn) == 0

    def test_missing_secret_names_the_arn(self, aws):
        client, _, keys_arn = aws
        missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:supabase/dev/nope-AbCdEf"
        with pytest.raises(handler.MintError, match="does not exist or has no value"):
            handler.remint(settings(missing, keys_arn), client=client, now=NOW)

    def test_thirty_two_characters_are_enough(self, aws):
        client, jwt_arn, keys_arn = aws
        client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": "z" * 32}))
        assert handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW).reminted


class TestRemint:
    def test_writes_keys_when_none_are_stored(self, aws):
        client, jwt_arn, keys_arn = aws
        result = handler.remint(settings(jwt_arn, keys_arn, expiry_days=365), client=client, now=NOW)
        assert result.reminted and result.reason.startswith("no keys stored; no signing key stored")
        keys = stored(client, keys_arn)
        claims = jwt.decode(keys["service_role_key"], SECRET, algorithms=["HS256"], options={"verify_exp": False})
        assert claims["role"] == "service_role" and claims["exp"] == NOW + 365 * 86400 == result.expires_at

    def test_current_keys_are_left_untouched(self, aws):
        client, jwt_arn, keys_arn = aws
        first = handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        second = handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW + 86400)
        assert not second.reminted and second.version_id == first.version_id
        assert versions(client, keys_arn) == 1

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"issuer": "supabase-prod"}, "another role or issuer"),
            ({"expiry_days": 400}, "lifetime differs"),
        ],
    )
    def test_changed_settings_remint(self, aws, change, reason):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn, expiry_days=365), client=client, now=NOW)
        result = handler.remint(settings(jwt_arn, keys_arn, **{"expiry_days": 365, **change}), client=client, now=NOW)
        assert result.reminted and reason in result.reason
        assert versions(client, keys_arn) == 2

    def test_keys_close_to_expiry_are_renewed(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn, expiry_days=365), client=client, now=NOW)
        still_fine = handler.remint(settings(jwt_arn, keys_arn, expiry_days=365), client=client, now=NOW + 334 * 86400)
        renewed = handler.remint(settings(jwt_arn, keys_arn, expiry_days=365), client=client, now=NOW + 336 * 86400)
        assert not still_fine.reminted
        assert renewed.reminted and "expires in less than 30 days" in renewed.reason

    def test_swapped_keys_are_replaced(self, aws):
        client, jwt_arn, keys_arn = aws
        keys = handler.mint_keys(SECRET, issuer="supabase", expiry_days=handler.DEFAULT_EXPIRY_DAYS, now=NOW)
        client.put_secret_value(
            SecretId=keys_arn,
            SecretString=json.dumps({"anon_key": keys["service_role_key"], "service_role_key": keys["anon_key"]}),
        )
        result = handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        assert result.reminted and "anon_key carries another role or issuer" in result.reason


METRICS_SECRET = "m" * 40 + "0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def realtime(aws):
    client, jwt_arn, keys_arn = aws
    arn = client.create_secret(
        Name="supabase/dev/realtime",
        SecretString=json.dumps(
            {"secret_key_base": "b" * 64, "db_enc_key": "e" * 16, "metrics_jwt_secret": METRICS_SECRET}
        ),
    )["ARN"]
    return client, jwt_arn, keys_arn, arn


def realtime_accepts(token: str, secret: str) -> dict:
    """What Realtime's /metrics checks: an HS256 JWT with typ JWT, signed with METRICS_JWT_SECRET, unexpired."""
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"], "verify_iat": False})


class TestMetricsToken:
    def test_minted_with_the_metrics_secret_not_the_jwt_secret(self, realtime):
        client, jwt_arn, keys_arn, realtime_arn = realtime
        handler.remint(settings(jwt_arn, keys_arn, realtime_secret_arn=realtime_arn), client=client, now=NOW)
        keys = stored(client, keys_arn)
        assert {"anon_key", "service_role_key", "metrics_token"} <= set(keys)
        assert realtime_accepts(keys["metrics_token"], METRICS_SECRET)["role"] == "metrics"
        # Neither way round: an anon key (public) must not open /metrics, nor the token the API.
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(keys["metrics_token"], SECRET, algorithms=["HS256"], options={"verify_exp": False})
        with pytest.raises(jwt.InvalidSignatureError):
            realtime_accepts(keys["anon_key"], METRICS_SECRET)

    def test_without_the_realtime_secret_no_token_is_minted(self, realtime):
        client, jwt_arn, keys_arn, _ = realtime
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        assert "metrics_token" not in stored(client, keys_arn)

    def test_rotating_the_metrics_secret_keeps_the_api_keys(self, realtime):
        client, jwt_arn, keys_arn, realtime_arn = realtime
        config = settings(jwt_arn, keys_arn, realtime_secret_arn=realtime_arn)
        handler.remint(config, client=client, now=NOW)
        before = stored(client, keys_arn)
        new_secret = "n" * 64
        client.put_secret_value(SecretId=realtime_arn, SecretString=json.dumps({"metrics_jwt_secret": new_secret}))
        result = handler.remint(config, client=client, now=NOW + 60)
        after = stored(client, keys_arn)
        assert result.reminted and result.reason == "metrics_token does not verify with the current metrics JWT secret"
        assert {k: after[k] for k in ("anon_key", "service_role_key")} == {
            k: before[k] for k in ("anon_key", "service_role_key")
        }
        assert realtime_accepts(after["metrics_token"], new_secret)["iat"] == NOW + 60
        assert not handler.remint(config, client=client, now=NOW + 120).reminted

    def test_rotating_the_jwt_secret_keeps_the_metrics_token(self, realtime):
        client, jwt_arn, keys_arn, realtime_arn = realtime
        config = settings(jwt_arn, keys_arn, realtime_secret_arn=realtime_arn)
        handler.remint(config, client=client, now=NOW)
        token = stored(client, keys_arn)["metrics_token"]
        client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": "j" * 48}))
        result = handler.remint(config, client=client, now=NOW + 60)
        # The JWKS changes too: it carries the JWT secret as the legacy HS256 key.
        assert result.reminted and result.reason == (
            "jwks differs from the signing keys; jwt_keys differs from the signing keys; "
            "anon_key does not verify with the current JWT secret"
        )
        assert stored(client, keys_arn)["metrics_token"] == token

    @pytest.mark.parametrize("value", [{"metrics_jwt_secret": "short-but-secret"}, {"db_enc_key": "e" * 16}])
    def test_unusable_metrics_secret_is_a_clear_error_without_the_value(self, realtime, value):
        client, jwt_arn, keys_arn, realtime_arn = realtime
        client.put_secret_value(SecretId=realtime_arn, SecretString=json.dumps(value))
        with pytest.raises(handler.MintError, match="has no usable metrics_jwt_secret") as err:
            handler.remint(settings(jwt_arn, keys_arn, realtime_secret_arn=realtime_arn), client=client, now=NOW)
        assert "short-but-secret" not in str(err.value) and realtime_arn in str(err.value)
        assert versions(client, keys_arn) == 0


class TestOnEvent:
    def event(self, request: str, jwt_arn: str, keys_arn: str, **props) -> dict:
        return {
            "RequestType": request,
            "PhysicalResourceId": keys_arn,
            "ResourceProperties": {
                "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
                "JwtSecretArn": jwt_arn,
                "ApiKeysSecretArn": keys_arn,
                "ExpiryDays": "90",
                **props,
            },
        }

    def test_create_returns_no_key_material(self, aws):
        client, jwt_arn, keys_arn = aws
        response = handler.on_event(self.event("Create", jwt_arn, keys_arn), None, client=client)
        keys = stored(client, keys_arn)
        assert response["PhysicalResourceId"] == keys_arn
        assert response["Data"]["Reminted"] == "true"
        rendered = json.dumps(response)
        for value in keys.values():
            assert value not in rendered
            if value.count(".") == 2:  # a JWT: not even its signature
                assert value.split(".")[2] not in rendered
        private = json.loads(keys["signing_keys"])["current"]["d"]
        assert private not in rendered and private not in keys["jwks"]
        assert SECRET not in rendered
        claims = jwt.decode(keys["anon_key"], SECRET, algorithms=["HS256"], issuer="supabase")
        assert claims["exp"] - claims["iat"] == 90 * 86400

    def test_delete_leaves_the_secrets(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.on_event(self.event("Create", jwt_arn, keys_arn), None, client=client)
        before = stored(client, keys_arn)
        response = handler.on_event(self.event("Delete", jwt_arn, keys_arn), None, client=client)
        assert response == {"PhysicalResourceId": keys_arn}
        assert stored(client, keys_arn) == before and versions(client, keys_arn) == 1

    def test_bad_expiry_days_is_a_clear_error(self, aws):
        client, jwt_arn, keys_arn = aws
        with pytest.raises(handler.MintError, match="ExpiryDays must be a whole number"):
            handler.on_event(self.event("Create", jwt_arn, keys_arn, ExpiryDays="ten"), None, client=client)
        with pytest.raises(handler.MintError, match="between 1 and"):
            handler.on_event(self.event("Create", jwt_arn, keys_arn, ExpiryDays="0"), None, client=client)

    def test_scheduled_event_uses_environment_settings(self, aws, monkeypatch):
        client, jwt_arn, keys_arn = aws
        monkeypatch.setenv("JWT_SECRET_ARN", jwt_arn)
        monkeypatch.setenv("API_KEYS_SECRET_ARN", keys_arn)
        monkeypatch.setenv("JWT_ISSUER", "supabase-dev")
        monkeypatch.setenv("API_KEY_EXPIRY_DAYS", "120")
        scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        first = handler.on_event(scheduled, None, client=client)
        second = handler.on_event(scheduled, None, client=client)
        assert first["reminted"] is True and second["reminted"] is False
        claims = jwt.decode(stored(client, keys_arn)["anon_key"], SECRET, algorithms=["HS256"], issuer="supabase-dev")
        assert claims["exp"] - claims["iat"] == 120 * 86400

    def test_scheduled_event_without_configuration_fails_clearly(self, aws, monkeypatch):
        client, _, _ = aws
        for name in ("JWT_SECRET_ARN", "API_KEYS_SECRET_ARN"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(handler.MintError, match="JwtSecretArn and ApiKeysSecretArn are both required"):
            handler.on_event({"source": "aws.events", "detail-type": "Scheduled Event"}, None, client=client)
