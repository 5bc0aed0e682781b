"""Mints every Supabase API key and signing key into the API keys secret.

One secret (`<project>/<env>/api-keys`) holds both key kinds, from which External Secrets feeds
Kong, GoTrue, PostgREST, Realtime, Storage, Studio and the edge runtime. Without this function a
deployment would carry placeholder keys.

New keys (always; shapes in keyset.py, after upstream's `docker/utils/add-new-auth-keys.sh`):

* `signing_keys`: the ES256 signing keys and their rotation stage (private; the minter's own
  state): `current` signs, `next` is published but does not sign yet, `previous` (public half
  only) is still published so tokens it signed keep verifying.
* `jwks`: the public JWKS every verifier reads (PostgREST, Realtime, Storage, edge runtime,
  Studio); `jwt_keys`: GoTrue's `GOTRUE_JWT_KEYS` (the current private key, the others
  verify-only).
* `publishable_key` / `secret_key`: the opaque `sb_publishable_...` / `sb_secret_...` keys
  clients send as `apikey`.
* `anon_key_asymmetric` / `service_role_key_asymmetric`: ES256 JWTs (`role: anon` /
  `role: service_role`) signed with the current key, which Kong substitutes as
  `Authorization: Bearer ...` for the opaque keys (k8s_charts/supabase/kong_lua.py).

Legacy keys, only while `LegacyApiKeys` is true: `anon_key` and `service_role_key`, HS256 JWTs
signed with the JWT secret (`<project>/<env>/jwt`, JSON `{"secret": ...}`), and the JWT secret
as an `oct` key in `jwks`/`jwt_keys`, so verifiers accept HS256 tokens. Switched off, the
minter removes both fields and the `oct` key: legacy keys and legacy-signed tokens are refused.

When given the realtime secret (`<project>/<env>/realtime`, field `metrics_jwt_secret`), it
also mints `metrics_token` into the API keys secret: the Bearer JWT (`role: metrics`) that
Prometheus sends to Realtime's /metrics, which accepts any HS256 JWT signed with
METRICS_JWT_SECRET. External Secrets templates cannot sign, hence a minted token. Each token
is re-minted on its own: rotating the metrics secret never changes the anon key that client
applications embed.

Two ways in, one code path (`remint`):

* CloudFormation custom resource (CDK `custom_resources.Provider`, `on_event`): Create mints,
  Update re-mints only when the stored keys no longer match (JWT secret changed, issuer or
  lifetime changed, close to expiry), Delete leaves the secrets alone.
* Any other event (an EventBridge schedule, or an EventBridge rule on Secrets Manager's
  CloudTrail events `PutSecretValue` / `RotationSucceeded` for the JWT or realtime secret):
  settings come from the environment (`JWT_SECRET_ARN`, `API_KEYS_SECRET_ARN`,
  `REALTIME_SECRET_ARN`, `JWT_ISSUER`, `API_KEY_EXPIRY_DAYS`, `LEGACY_API_KEYS`) and the same
  idempotent check runs. Because a no-op costs one read, over-triggering is harmless; the write
  of the API keys secret itself triggers nothing new. An event `{"rotate": <step>}` moves the
  signing keys one rotation step first (below); nothing else ever changes the signing keys or
  the opaque keys once stored, so re-deploys and re-mints keep every session valid.

Rotating the ES256 signing key (user sessions survive; three invocations, each followed by the
consumer restart below, and each one waiting at least the access-token lifetime,
`auth.jwt_expiry_seconds`, before the next):

1. `aws lambda invoke --function-name <mint function> --payload '{"rotate":"prepare"}' out.json`
   adds a new key to the JWKS. Verifiers accept it before anything signs with it.
2. `{"rotate":"activate"}`: GoTrue and the pre-signed API-key JWTs sign with the new key; the
   old key stays in the JWKS, so every session token it signed still verifies until it expires.
   The opaque `sb_...` keys clients embed do not change.
3. `{"rotate":"retire"}`: the old key leaves the JWKS; tokens it signed are refused from then on.

Rotating the legacy JWT secret (every consumer must change together; the legacy keys change, and
so would HS256 sessions, but GoTrue signs sessions with the ES256 key, so those survive; prefer
switching legacy keys off):

1. Put a new random secret of at least 32 characters:
   `aws secretsmanager put-secret-value --secret-id <project>/<env>/jwt --secret-string '{"secret":"..."}'`
2. Re-mint the API keys: the EventBridge rule on the JWT secret does it within a minute, or
   invoke the function by hand: `aws lambda invoke --function-name <mint function> --payload '{}' out.json`
   and check `out.json` says `"reminted": true`.

After either: restart the consumers so they read the new values: force External Secrets to refresh
(`kubectl annotate externalsecret -n supabase --all force-sync=$(date +%s) --overwrite`),
wait for the Kubernetes Secrets to change, then `kubectl rollout restart deployment -n supabase`
(and any Rollout/StatefulSet that mounts the keys). Until the restart finishes, pods still run
with the old set, which stays self-consistent. For the legacy secret, publish the new anon key
to client applications: the old one stops verifying as soon as the services run with the new
secret.

Key material never leaves this module except through `put_secret_value`: it is not logged and
not returned in the custom resource's `Data` (CloudFormation would show it in events).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import jwt
from botocore.exceptions import ClientError

try:
    from ops.mint_api_keys import keyset
except ImportError:  # in Lambda the asset folder itself is the import root
    import keyset  # type: ignore[no-redef,import-not-found]

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

MIN_SECRET_LENGTH = 32
DEFAULT_ISSUER = "supabase"
# Matches upstream's long-lived keys: the anon key is compiled into client applications, so a
# short life would break them. Rotation of the JWT secret is the way to revoke keys.
DEFAULT_EXPIRY_DAYS = 3650
MAX_EXPIRY_DAYS = 36500
# A key is renewed this long before it expires; the old key stays valid until its own expiry,
# so clients get that much time to pick up the new one.
RENEW_BEFORE_SECONDS = 30 * 86400
KEY_FIELDS = {"anon": "anon_key", "service_role": "service_role_key"}
# role -> field of the ES256 JWT Kong substitutes for that role's opaque key
PRESIGNED_FIELDS = {"anon": "anon_key_asymmetric", "service_role": "service_role_key_asymmetric"}
PUBLISHABLE_KEY_FIELD = "publishable_key"
OPAQUE_FIELDS = {PUBLISHABLE_KEY_FIELD: keyset.PUBLISHABLE_PREFIX, "secret_key": keyset.SECRET_PREFIX}
SIGNING_KEYS_FIELD = "signing_keys"
JWKS_FIELD = "jwks"
GOTRUE_KEYS_FIELD = "jwt_keys"
ROTATION_STEPS = ("prepare", "activate", "retire")
METRICS_ROLE = "metrics"
METRICS_TOKEN_FIELD = "metrics_token"
METRICS_SECRET_FIELD = "metrics_jwt_secret"
# From supabase/supabase docker/.env.example: anyone can sign keys with it.
PUBLIC_DEMO_JWT_SECRET = "your-super-secret-jwt-token-with-at-least-32-characters-long"


class MintError(Exception):
    """The keys cannot be minted; the message names the secret and the fix, never a value."""


@dataclass(frozen=True, kw_only=True)
class TokenPolicy:
    """What every minted token carries: its issuer and lifetime (scripts/local mints with it too)."""

    issuer: str = DEFAULT_ISSUER
    expiry_days: int = DEFAULT_EXPIRY_DAYS

    def __post_init__(self) -> None:
        if not self.issuer:
            raise MintError("Issuer must not be empty")
        if not 1 <= self.expiry_days <= MAX_EXPIRY_DAYS:
            raise MintError(f"ExpiryDays must be between 1 and {MAX_EXPIRY_DAYS}, got {self.expiry_days}")

    @property
    def lifetime_seconds(self) -> int:
        return self.expiry_days * 86400


@dataclass(frozen=True, kw_only=True)
class MintSettings(TokenPolicy):
    jwt_secret_arn: str
    api_keys_secret_arn: str
    realtime_secret_arn: str = ""  # empty: no Realtime metrics token
    legacy_api_keys: bool = True

    def __post_init__(self) -> None:
        if not self.jwt_secret_arn or not self.api_keys_secret_arn:
            raise MintError("JwtSecretArn and ApiKeysSecretArn are both required")
        super().__post_init__()

    @classmethod
    def from_resource_properties(cls, props: Mapping[str, Any]) -> MintSettings:
        # CloudFormation hands every scalar property over as a string.
        return cls(
            jwt_secret_arn=str(props.get("JwtSecretArn", "")),
            api_keys_secret_arn=str(props.get("ApiKeysSecretArn", "")),
            realtime_secret_arn=str(props.get("RealtimeSecretArn", "")),
            issuer=str(props.get("Issuer") or DEFAULT_ISSUER),
            expiry_days=_int(props.get("ExpiryDays", DEFAULT_EXPIRY_DAYS), "ExpiryDays"),
            legacy_api_keys=_bool(props.get("LegacyApiKeys", "true"), "LegacyApiKeys"),
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> MintSettings:
        return cls(
            jwt_secret_arn=env.get("JWT_SECRET_ARN", ""),
            api_keys_secret_arn=env.get("API_KEYS_SECRET_ARN", ""),
            realtime_secret_arn=env.get("REALTIME_SECRET_ARN", ""),
            issuer=env.get("JWT_ISSUER") or DEFAULT_ISSUER,
            expiry_days=_int(env.get("API_KEY_EXPIRY_DAYS", DEFAULT_EXPIRY_DAYS), "API_KEY_EXPIRY_DAYS"),
            legacy_api_keys=_bool(env.get("LEGACY_API_KEYS", "true"), "LEGACY_API_KEYS"),
        )


@dataclass(frozen=True, kw_only=True)
class RemintResult:
    reminted: bool
    reason: str
    version_id: str
    expires_at: int
    signing_key_id: str


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MintError(f"{name} must be a whole number of days, got {value!r}") from None


def _bool(value: Any, name: str) -> bool:
    # CloudFormation hands booleans over as the strings "true" / "false".
    text = str(value).lower()
    if text not in ("true", "false"):
        raise MintError(f"{name} must be true or false, got {value!r}")
    return text == "true"


def sign_hs256(claims: Mapping[str, Any], secret: str) -> str:
    return jwt.encode(dict(claims), secret, algorithm="HS256")


def verified_claims(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of `token` if it is an HS256 JWT signed with `secret`, else None."""
    try:
        # Pinning the algorithm refuses "alg": "none" and any other downgrade; the minter judges
        # issuer, lifetime and expiry itself.
        claims = jwt.decode(token, secret, algorithms=["HS256"], options=keyset.SIGNATURE_ONLY)
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def _mint(role: str, secret: str, *, issuer: str, expiry_days: int, now: int) -> str:
    return sign_hs256({"role": role, "iss": issuer, "iat": now, "exp": now + expiry_days * 86400}, secret)


def mint_keys(secret: str, *, issuer: str, expiry_days: int, now: int) -> dict[str, str]:
    return {
        field: _mint(role, secret, issuer=issuer, expiry_days=expiry_days, now=now)
        for role, field in KEY_FIELDS.items()
    }


def mint_metrics_token(metrics_secret: str, *, issuer: str, expiry_days: int, now: int) -> str:
    return _mint(METRICS_ROLE, metrics_secret, issuer=issuer, expiry_days=expiry_days, now=now)


def read_jwt_secret(client: Any, secret_arn: str) -> str:
    try:
        raw = client.get_secret_value(SecretId=secret_arn)["SecretString"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise MintError(
                f"JWT secret {secret_arn} does not exist or has no value; fix: create it with "
                'JSON {"secret": "<at least 32 random characters>"}'
            ) from None
        raise MintError(f"cannot read JWT secret {secret_arn}: {code or exc}") from None
    except KeyError:
        raise MintError(f'JWT secret {secret_arn} holds binary data; fix: store JSON {{"secret": ...}}') from None
    try:
        value = json.loads(raw).get("secret")
    except (ValueError, AttributeError):
        raise MintError(f'JWT secret {secret_arn} is not a JSON object; fix: store JSON {{"secret": ...}}') from None
    if not isinstance(value, str) or not value:
        raise MintError(f'JWT secret {secret_arn} has no "secret" field; fix: store JSON {{"secret": ...}}')
    if len(value) < MIN_SECRET_LENGTH:
        raise MintError(
            f"JWT secret {secret_arn} is {len(value)} characters long; Supabase needs at least "
            f"{MIN_SECRET_LENGTH}: fix: put a longer random value"
        )
    if value == PUBLIC_DEMO_JWT_SECRET:
        raise MintError(
            f"JWT secret {secret_arn} is the public demo value from Supabase's .env.example; fix: put a random value"
        )
    return value


def read_metrics_secret(client: Any, secret_arn: str) -> str:
    """Realtime's METRICS_JWT_SECRET, from the realtime secret's `metrics_jwt_secret` field."""
    fix = f'fix: give it a "{METRICS_SECRET_FIELD}" of at least {MIN_SECRET_LENGTH} random characters'
    try:
        raw = client.get_secret_value(SecretId=secret_arn).get("SecretString") or ""
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise MintError(f"cannot read realtime secret {secret_arn}: {code or exc}") from None
    try:
        value = json.loads(raw).get(METRICS_SECRET_FIELD)
    except (ValueError, AttributeError):
        raise MintError(f"realtime secret {secret_arn} is not a JSON object; {fix}") from None
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        raise MintError(f"realtime secret {secret_arn} has no usable {METRICS_SECRET_FIELD}; {fix}")
    return value


def _stored_keys(client: Any, secret_arn: str) -> tuple[dict[str, Any], str] | None:
    try:
        response = client.get_secret_value(SecretId=secret_arn)
    except ClientError as exc:
        # A secret created without a value (or not yet at all) simply holds no keys yet.
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    try:
        keys = json.loads(response.get("SecretString") or "")
    except ValueError:
        return None
    return (keys, response["VersionId"]) if isinstance(keys, dict) else None


def _renew_window(policy: TokenPolicy) -> int:
    return min(RENEW_BEFORE_SECONDS, policy.lifetime_seconds // 2)


def _token_problem(
    keys: Mapping[str, Any], field: str, role: str, secret: str, settings: MintSettings, now: int
) -> str | None:
    """Why the stored token `field` must be replaced, or None when it is still good."""
    token = keys.get(field)
    if not isinstance(token, str) or not token:
        return f"{field} is missing"
    claims = verified_claims(token, secret)
    if claims is None:
        signer = "metrics JWT secret" if role == METRICS_ROLE else "JWT secret"
        return f"{field} does not verify with the current {signer}"
    if claims.get("role") != role or claims.get("iss") != settings.issuer:
        return f"{field} carries another role or issuer"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat != settings.lifetime_seconds:
        return f"{field} lifetime differs from ExpiryDays={settings.expiry_days}"
    if exp - now < _renew_window(settings):
        return f"{field} expires in less than {_renew_window(settings) // 86400} days"
    return None


def _key_problem(keys: Mapping[str, Any], secret: str, settings: MintSettings, now: int) -> str | None:
    """Why the stored legacy API keys must be replaced (always both together), or None."""
    for role, field in KEY_FIELDS.items():
        problem = _token_problem(keys, field, role, secret, settings, now)
        if problem:
            return problem
    return None


@dataclass(frozen=True, kw_only=True)
class SigningKeys:
    """The ES256 keys and where the rotation stands (`signing_keys` in the API keys secret)."""

    current: keyset.SigningKey
    next: keyset.SigningKey | None = None
    previous: keyset.SigningKey | None = None  # public half only

    @property
    def published(self) -> list[keyset.SigningKey]:
        """Every key verifiers must accept: the one signing now, the one about to, the one that did."""
        return [k for k in (self.current, self.next, self.previous) if k is not None]

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": self.current.jwk(private=True, sign=True),
                "next": self.next.jwk(private=True) if self.next else None,
                "previous": self.previous.jwk() if self.previous else None,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: Any) -> SigningKeys:
        if not isinstance(text, str):
            raise keyset.KeySetError(f"{SIGNING_KEYS_FIELD} is not a JSON string")
        try:
            raw = json.loads(text)
        except ValueError:
            raise keyset.KeySetError(f"{SIGNING_KEYS_FIELD} is not JSON") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("current"), dict):
            raise keyset.KeySetError(f"{SIGNING_KEYS_FIELD} has no current key")
        current = keyset.SigningKey.from_jwk(raw["current"])
        if not current.has_private:
            raise keyset.KeySetError(f"{SIGNING_KEYS_FIELD}: the current key has no private half")
        nxt = keyset.SigningKey.from_jwk(raw["next"]) if raw.get("next") else None
        previous = keyset.SigningKey.from_jwk(raw["previous"]).public if raw.get("previous") else None
        return cls(current=current, next=nxt, previous=previous)

    def rotated(self, step: str) -> SigningKeys:
        if step == "prepare":
            if self.next is not None:
                raise MintError(f"rotate prepare: key {self.next.kid} is already prepared; fix: run activate")
            return SigningKeys(current=self.current, next=keyset.SigningKey.generate(), previous=self.previous)
        if step == "activate":
            if self.next is None:
                raise MintError(
                    "rotate activate: no key is prepared; fix: run prepare and wait for the consumers first"
                )
            return SigningKeys(current=self.next, next=None, previous=self.current.public)
        if step == "retire":
            if self.previous is None:
                raise MintError("rotate retire: no previous key is published; fix: run activate first")
            return SigningKeys(current=self.current, next=self.next, previous=None)
        raise MintError(f"rotate must be one of {', '.join(ROTATION_STEPS)}, got {step!r}")

    def jwks(self, legacy_secret: str | None) -> str:
        keys = [k.jwk() for k in self.published]
        if legacy_secret is not None:
            keys.append(keyset.legacy_jwk(legacy_secret))
        return json.dumps({"keys": keys}, sort_keys=True)

    def gotrue_keys(self, legacy_secret: str | None) -> str:
        keys = [self.current.jwk(private=True, sign=True)]
        keys += [k.jwk() for k in (self.next, self.previous) if k is not None]
        if legacy_secret is not None:
            keys.append(keyset.legacy_jwk(legacy_secret))
        return json.dumps(keys, sort_keys=True)


def _stored_signing_keys(keys: Mapping[str, Any]) -> tuple[SigningKeys | None, str]:
    if SIGNING_KEYS_FIELD not in keys:
        return None, "no signing key stored"
    try:
        return SigningKeys.from_json(keys[SIGNING_KEYS_FIELD]), ""
    except keyset.KeySetError as exc:
        # Never silently replace a key users' sessions depend on: an operator must look.
        raise MintError(
            f"the stored signing keys are unreadable ({exc}); fix: restore the previous version of the API "
            "keys secret, or delete the signing_keys field to start over (every user signs in again)"
        ) from None


def _presigned_problem(
    keys: Mapping[str, Any], field: str, role: str, signing: SigningKeys, policy: TokenPolicy, now: int
) -> str | None:
    token = keys.get(field)
    if not isinstance(token, str) or not token:
        return f"{field} is missing"
    claims = keyset.verified_es256_claims(token, [signing.current])
    if claims is None:
        return f"{field} is not signed by the current signing key"
    if claims.get("role") != role or claims.get("iss") != policy.issuer:
        return f"{field} carries another role or issuer"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat != policy.lifetime_seconds:
        return f"{field} lifetime differs from ExpiryDays={policy.expiry_days}"
    if exp - now < _renew_window(policy):
        return f"{field} expires in less than {_renew_window(policy) // 86400} days"
    return None


def mint_new_keys(
    keys: dict[str, Any], policy: TokenPolicy, legacy_secret: str | None, now: int, rotate: str | None = None
) -> tuple[SigningKeys, list[str]]:
    """Bring the new key kinds in `keys` up to date in place; returns the signing keys and why it changed them.

    Stored signing and opaque keys that are still good stay, so minting again changes nothing."""
    reasons = []
    signing, problem = _stored_signing_keys(keys)
    if signing is None:
        signing = SigningKeys(current=keyset.SigningKey.generate())
        reasons.append(problem)
    if rotate:
        signing = signing.rotated(rotate)
        reasons.append(f"rotation step {rotate}")
    keys[SIGNING_KEYS_FIELD] = signing.to_json()
    for field, prefix in OPAQUE_FIELDS.items():
        if not keyset.opaque_key_valid(keys.get(field), prefix):
            keys[field] = keyset.opaque_key(prefix)
            reasons.append(f"{field} is missing or malformed")
    for role, field in PRESIGNED_FIELDS.items():
        stale = _presigned_problem(keys, field, role, signing, policy, now)
        if stale:
            claims = {"role": role, "iss": policy.issuer, "iat": now, "exp": now + policy.lifetime_seconds}
            keys[field] = keyset.sign_es256(claims, signing.current)
            reasons.append(stale)
    for field, value in (
        (JWKS_FIELD, signing.jwks(legacy_secret)),
        (GOTRUE_KEYS_FIELD, signing.gotrue_keys(legacy_secret)),
    ):
        if keys.get(field) != value:
            keys[field] = value
            reasons.append(f"{field} differs from the signing keys")
    return signing, reasons


def _expiry(keys: Mapping[str, Any], field: str) -> int:
    # Every token is verified or freshly minted by now; only its exp is read here.
    return int(jwt.decode(keys[field], options={"verify_signature": False})["exp"])


def remint(
    settings: MintSettings,
    *,
    client: Any,
    now: int | None = None,
    force: bool = False,
    rotate: str | None = None,
) -> RemintResult:
    """Make the API keys secret hold keys that verify with the current signing keys and secrets.

    Writes a new secret version only when needed (or when `force`), so running it again is
    free and leaves consumers alone. `force` re-mints the tokens only: the signing keys and the
    opaque keys survive it, so a replaced custom resource never ends a user session. The legacy
    keys, the new keys and the metrics token are judged apart, and a write keeps whichever of
    them is still good.
    """
    if rotate is not None and rotate not in ROTATION_STEPS:
        raise MintError(f"rotate must be one of {', '.join(ROTATION_STEPS)}, got {rotate!r}")
    secret = read_jwt_secret(client, settings.jwt_secret_arn) if settings.legacy_api_keys else None
    metrics_secret = read_metrics_secret(client, settings.realtime_secret_arn) if settings.realtime_secret_arn else None
    now = int(time.time()) if now is None else now
    stored = _stored_keys(client, settings.api_keys_secret_arn)
    keys: dict[str, Any] = dict(stored[0]) if stored else {}
    if force:
        for field in (*KEY_FIELDS.values(), *PRESIGNED_FIELDS.values(), METRICS_TOKEN_FIELD):
            keys.pop(field, None)
    reasons = ["forced"] if force else []
    if stored is None:
        reasons.append("no keys stored")
    signing, new_reasons = mint_new_keys(keys, settings, secret, now, rotate)
    reasons += new_reasons
    token_fields = list(PRESIGNED_FIELDS.values())
    if secret is not None:
        api_problem = _key_problem(keys, secret, settings, now)
        if api_problem:
            keys.update(mint_keys(secret, issuer=settings.issuer, expiry_days=settings.expiry_days, now=now))
            reasons.append(api_problem)
        token_fields += KEY_FIELDS.values()
    elif any(field in keys for field in KEY_FIELDS.values()):
        # The data stack deploys before the platform stack, so for the length of one deploy the
        # old ExternalSecrets still ask for these fields: External Secrets reports the sync error
        # and keeps the Secrets it made, and the platform stack's new templates stop asking.
        for field in KEY_FIELDS.values():
            keys.pop(field, None)
        reasons.append("legacy API keys are switched off")
    if metrics_secret is not None:
        problem = _token_problem(keys, METRICS_TOKEN_FIELD, METRICS_ROLE, metrics_secret, settings, now)
        if problem:
            keys[METRICS_TOKEN_FIELD] = mint_metrics_token(
                metrics_secret, issuer=settings.issuer, expiry_days=settings.expiry_days, now=now
            )
            reasons.append(problem)
        token_fields.append(METRICS_TOKEN_FIELD)
    expires_at = min(_expiry(keys, field) for field in token_fields)
    if not reasons and stored is not None:
        version_id = stored[1]
        LOG.info("API keys in %s are current (version %s); nothing to do", settings.api_keys_secret_arn, version_id)
        return RemintResult(
            reminted=False,
            reason="stored keys are current",
            version_id=version_id,
            expires_at=expires_at,
            signing_key_id=signing.current.kid,
        )
    reason = "; ".join(dict.fromkeys(reasons))
    response = client.put_secret_value(SecretId=settings.api_keys_secret_arn, SecretString=json.dumps(keys))
    LOG.info("minted API keys into %s (version %s): %s", settings.api_keys_secret_arn, response["VersionId"], reason)
    return RemintResult(
        reminted=True,
        reason=reason,
        version_id=response["VersionId"],
        expires_at=expires_at,
        signing_key_id=signing.current.kid,
    )


@functools.cache
def _default_client() -> Any:
    # boto3 honours AWS_ENDPOINT_URL, which is how tests point this at a moto server.
    return boto3.client("secretsmanager")


def _custom_resource(event: Mapping[str, Any], client: Any) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        # The secrets belong to the data stack, which retains them; this resource only fills
        # one in. CloudFormation also sends Delete for the old physical id after a
        # replacement and when rolling back, while consumers still read the keys, and erasing
        # the stored copy would revoke nothing anyway: a JWT stays valid until it expires or
        # the JWT secret rotates.
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if request not in ("Create", "Update"):
        raise MintError(f"unknown RequestType {request!r}")
    settings = MintSettings.from_resource_properties(event.get("ResourceProperties", {}))
    result = remint(settings, client=client, force=request == "Create")
    return {
        "PhysicalResourceId": settings.api_keys_secret_arn,
        "Data": {
            # Pass VersionId into a pod template annotation to restart consumers on re-mint.
            "VersionId": result.version_id,
            "Reminted": "true" if result.reminted else "false",
            "ExpiresAt": str(result.expires_at),
            # A kid is public (every JWT header and the JWKS carry it).
            "SigningKeyId": result.signing_key_id,
        },
    }


def on_event(event: Mapping[str, Any], context: Any, *, client: Any = None) -> dict[str, Any]:
    client = client if client is not None else _default_client()
    if "RequestType" in event:
        return _custom_resource(event, client)
    rotate = event.get("rotate")
    LOG.info(
        "re-mint check triggered by %s / %s%s",
        event.get("source", "direct invoke"),
        event.get("detail-type", "-"),
        f", rotation step {rotate}" if rotate else "",
    )
    result = remint(MintSettings.from_environment(os.environ), client=client, rotate=rotate)
    return {
        "reminted": result.reminted,
        "reason": result.reason,
        "versionId": result.version_id,
        "expiresAt": result.expires_at,
        "signingKeyId": result.signing_key_id,
    }
