"""The minter's custom resource lifecycle against a moto server over HTTP, as CloudFormation drives it."""

from __future__ import annotations

import json
import secrets
import urllib.request

import boto3
import jwt
import pytest

from ops.mint_api_keys import handler

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch, moto_endpoint):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=5).close()
    handler._default_client.cache_clear()
    yield
    handler._default_client.cache_clear()


@pytest.fixture
def stack_secrets(aws_env):
    client = boto3.client("secretsmanager")
    jwt_secret = secrets.token_urlsafe(48)
    jwt_arn = client.create_secret(Name="supabase/staging/jwt", SecretString=json.dumps({"secret": jwt_secret}))["ARN"]
    keys_arn = client.create_secret(Name="supabase/staging/api-keys", Description="minted by the custom resource")[
        "ARN"
    ]
    return client, jwt_arn, keys_arn, jwt_secret


def cfn_event(request: str, jwt_arn: str, keys_arn: str, physical_id: str | None = None) -> dict:
    event = {
        "RequestType": request,
        "RequestId": secrets.token_hex(8),
        "StackId": f"arn:aws:cloudformation:{REGION}:123456789012:stack/staging-data/1",
        "LogicalResourceId": "ApiKeys",
        "ResourceType": "Custom::SupabaseApiKeys",
        "ResourceProperties": {
            "ServiceToken": f"arn:aws:lambda:{REGION}:123456789012:function:provider",
            "JwtSecretArn": jwt_arn,
            "ApiKeysSecretArn": keys_arn,
            "Issuer": "supabase",
            "ExpiryDays": "3650",
        },
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    if request == "Update":
        event["OldResourceProperties"] = dict(event["ResourceProperties"])
    return event


def version_ids(client, arn: str) -> set[str]:
    return {v["VersionId"] for v in client.list_secret_version_ids(SecretId=arn)["Versions"]}


def decode(token: str, secret: str) -> dict:
    return jwt.decode(
        token, secret, algorithms=["HS256"], issuer="supabase", options={"require": ["exp", "iat", "role"]}
    )


def test_lifecycle_create_update_rotate_delete(stack_secrets):
    client, jwt_arn, keys_arn, jwt_secret = stack_secrets

    # The handler builds its own client: AWS_ENDPOINT_URL is what routes it to moto.
    created = handler.on_event(cfn_event("Create", jwt_arn, keys_arn), None)
    physical_id = created["PhysicalResourceId"]
    assert physical_id == keys_arn
    keys = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    assert decode(keys["anon_key"], jwt_secret)["role"] == "anon"
    assert decode(keys["service_role_key"], jwt_secret)["role"] == "service_role"
    after_create = version_ids(client, keys_arn)
    assert after_create == {created["Data"]["VersionId"]}

    unchanged = handler.on_event(cfn_event("Update", jwt_arn, keys_arn, physical_id), None)
    assert unchanged["Data"]["Reminted"] == "false"
    assert unchanged["PhysicalResourceId"] == physical_id
    assert version_ids(client, keys_arn) == after_create
    assert json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"]) == keys

    new_secret = secrets.token_urlsafe(48)
    client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": new_secret}))
    rotated = handler.on_event(cfn_event("Update", jwt_arn, keys_arn, physical_id), None)
    assert rotated["Data"]["Reminted"] == "true"
    assert version_ids(client, keys_arn) == after_create | {rotated["Data"]["VersionId"]}
    new_keys = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    for field, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
        assert decode(new_keys[field], new_secret)["role"] == role
        with pytest.raises(jwt.InvalidSignatureError):
            decode(new_keys[field], jwt_secret)

    deleted = handler.on_event(cfn_event("Delete", jwt_arn, keys_arn, physical_id), None)
    assert deleted == {"PhysicalResourceId": physical_id}
    assert json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"]) == new_keys
    assert json.loads(client.get_secret_value(SecretId=jwt_arn)["SecretString"]) == {"secret": new_secret}


def test_rotation_event_remints_through_the_shared_path(stack_secrets, monkeypatch):
    client, jwt_arn, keys_arn, _ = stack_secrets
    monkeypatch.setenv("JWT_SECRET_ARN", jwt_arn)
    monkeypatch.setenv("API_KEYS_SECRET_ARN", keys_arn)
    handler.on_event(cfn_event("Create", jwt_arn, keys_arn), None)

    new_secret = secrets.token_urlsafe(48)
    client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": new_secret}))
    notification = {
        "source": "aws.secretsmanager",
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventName": "PutSecretValue", "requestParameters": {"secretId": jwt_arn}},
    }
    first = handler.on_event(notification, None)
    again = handler.on_event(notification, None)
    assert first["reminted"] is True and "anon_key does not verify with the current JWT secret" in first["reason"]
    assert again["reminted"] is False and again["versionId"] == first["versionId"]
    keys = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    assert decode(keys["service_role_key"], new_secret)["role"] == "service_role"


def test_create_fails_clearly_on_a_short_jwt_secret(stack_secrets):
    client, jwt_arn, keys_arn, _ = stack_secrets
    client.put_secret_value(SecretId=jwt_arn, SecretString=json.dumps({"secret": "too-short"}))
    with pytest.raises(handler.MintError, match="9 characters long; Supabase needs at least 32") as err:
        handler.on_event(cfn_event("Create", jwt_arn, keys_arn), None)
    assert "too-short" not in str(err.value)
    assert version_ids(client, keys_arn) == set()


def test_realtime_metrics_token_follows_its_own_secret(stack_secrets, monkeypatch):
    """Create with RealtimeSecretArn, then a rotation of METRICS_JWT_SECRET through the event path."""
    client, jwt_arn, keys_arn, jwt_secret = stack_secrets
    metrics_secret = secrets.token_urlsafe(48)
    realtime_arn = client.create_secret(
        Name="supabase/staging/realtime", SecretString=json.dumps({"metrics_jwt_secret": metrics_secret})
    )["ARN"]
    event = cfn_event("Create", jwt_arn, keys_arn)
    event["ResourceProperties"]["RealtimeSecretArn"] = realtime_arn
    handler.on_event(event, None)
    keys = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    assert decode(keys["metrics_token"], metrics_secret)["role"] == "metrics"
    assert decode(keys["anon_key"], jwt_secret)["role"] == "anon"

    for name, value in (
        ("JWT_SECRET_ARN", jwt_arn),
        ("API_KEYS_SECRET_ARN", keys_arn),
        ("REALTIME_SECRET_ARN", realtime_arn),
    ):
        monkeypatch.setenv(name, value)
    rotated = secrets.token_urlsafe(48)
    client.put_secret_value(SecretId=realtime_arn, SecretString=json.dumps({"metrics_jwt_secret": rotated}))
    result = handler.on_event(
        {
            "source": "aws.secretsmanager",
            "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": "PutSecretValue", "requestParameters": {"secretId": realtime_arn}},
        },
        None,
    )
    assert result["reminted"] is True
    after = json.loads(client.get_secret_value(SecretId=keys_arn)["SecretString"])
    assert decode(after["metrics_token"], rotated)["role"] == "metrics"
    assert after["anon_key"] == keys["anon_key"] and after["service_role_key"] == keys["service_role_key"]
