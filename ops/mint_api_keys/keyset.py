"""The new Supabase key kinds: ES256 signing keys published as a JWKS, and opaque API keys.

The elliptic-curve work (key generation, point and scalar checks, signing, verifying) is
`cryptography`'s, reached through PyJWT; nothing here does curve arithmetic. Both ship to Lambda
as a layer of PyPI's manylinux aarch64 wheels, built by `make install` without Docker
(constructs_lib/lambda_deps.py; pins in ops/mint_api_keys/requirements.txt).

Shapes follow upstream's `docker/utils/add-new-auth-keys.sh` (supabase/supabase):

* signing keys are EC P-256 JWKs with a random UUID `kid`, `alg: ES256`, `use: sig`;
* opaque keys are `sb_publishable_` / `sb_secret_` + 22 random base64url characters + `_` +
  the first 8 base64url characters of SHA-256(`<project ref>|<prefix+random>`);
* the JWKS verifiers read holds public keys only; GoTrue's `GOTRUE_JWT_KEYS` holds the private
  signing key with `key_ops: ["sign", "verify"]`, every other key `["verify"]` (GoTrue refuses
  more than one signing key: supabase/auth internal/conf/jwk.go).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from jwt.types import Options

PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
# Upstream's self-hosted project ref, part of the opaque keys' checksum.
PROJECT_REF = "supabase-self-hosted"
_OPAQUE_RANDOM_CHARS = 22
_OPAQUE_CHECKSUM_CHARS = 8
# The stored tokens are judged by the minter itself (issuer, lifetime, renewal window), so
# verification here checks the signature only.
SIGNATURE_ONLY: Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False}


class KeySetError(ValueError):
    """A stored key is malformed; the message names the key, never its value."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, kw_only=True, eq=False)
class SigningKey:
    """One ES256 key; `key` is a public key only when the private half is not kept (a retired key)."""

    kid: str
    key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=str(uuid.uuid4()), key=ec.generate_private_key(ec.SECP256R1()))

    @property
    def has_private(self) -> bool:
        return isinstance(self.key, ec.EllipticCurvePrivateKey)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.key.public_key() if isinstance(self.key, ec.EllipticCurvePrivateKey) else self.key

    @property
    def public(self) -> SigningKey:
        return SigningKey(kid=self.kid, key=self.public_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SigningKey) and self.jwk(private=self.has_private) == other.jwk(
            private=other.has_private
        )

    def jwk(self, *, private: bool = False, sign: bool = False) -> dict[str, Any]:
        if private and not isinstance(self.key, ec.EllipticCurvePrivateKey):
            raise KeySetError(f"signing key {self.kid} has no private half")
        material = ECAlgorithm.to_jwk(self.key if private else self.public_key, as_dict=True)
        return {
            **material,
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["sign", "verify"] if sign else ["verify"],
        }

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> SigningKey:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or not jwk.get("kid"):
            raise KeySetError("signing keys are EC P-256 JWKs with a kid")
        try:
            key = ECAlgorithm.from_jwk(dict(jwk))
        except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            # cryptography refuses a point off the curve and a private scalar that does not
            # match the public point; its messages never carry key material, but say it plainly.
            raise KeySetError(
                f"signing key {jwk.get('kid')}: not a valid P-256 key (malformed coordinates, a point off "
                "the curve, or a private scalar that does not match the public point)"
            ) from None
        return cls(kid=str(jwk["kid"]), key=key)


def sign_es256(claims: Mapping[str, Any], key: SigningKey) -> str:
    if not isinstance(key.key, ec.EllipticCurvePrivateKey):
        raise KeySetError(f"signing key {key.kid} has no private half")
    return jwt.encode(dict(claims), key.key, algorithm="ES256", headers={"kid": key.kid, "typ": "JWT"})


def verified_es256_claims(token: str, keys: list[SigningKey]) -> dict[str, Any] | None:
    """The claims of `token` if one of `keys` (chosen by `kid`) signed it with ES256, else None."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in keys if k.kid == kid), None)
        if key is None:
            return None
        # Pinning the algorithm refuses "alg": "none" and HS256-with-the-public-key confusion.
        claims = jwt.decode(token, key.public_key, algorithms=["ES256"], options=SIGNATURE_ONLY)
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def _checksum(intermediate: str) -> str:
    return b64url(hashlib.sha256(f"{PROJECT_REF}|{intermediate}".encode()).digest())[:_OPAQUE_CHECKSUM_CHARS]


def opaque_key(prefix: str) -> str:
    if prefix not in (PUBLISHABLE_PREFIX, SECRET_PREFIX):
        raise ValueError(f"unknown opaque key prefix {prefix!r}")
    intermediate = prefix + b64url(secrets.token_bytes(17))[:_OPAQUE_RANDOM_CHARS]
    return f"{intermediate}_{_checksum(intermediate)}"


def opaque_key_valid(key: object, prefix: str) -> bool:
    """Right prefix, length, alphabet and checksum: a typo or a truncated paste fails here."""
    if not isinstance(key, str) or not key.startswith(prefix):
        return False
    # Fixed positions: both the random part and the checksum may themselves contain "_".
    intermediate, separator, checksum = (
        key[: -_OPAQUE_CHECKSUM_CHARS - 1],
        key[-_OPAQUE_CHECKSUM_CHARS - 1],
        key[-_OPAQUE_CHECKSUM_CHARS:],
    )
    random_part = intermediate[len(prefix) :]
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return (
        separator == "_"
        and len(random_part) == _OPAQUE_RANDOM_CHARS
        and set(random_part) <= alphabet
        and secrets.compare_digest(checksum, _checksum(intermediate))
    )


def legacy_jwk(jwt_secret: str) -> dict[str, Any]:
    """The HS256 JWT secret as a JWK, so JWKS verifiers keep accepting legacy tokens.

    No `kid`: legacy tokens carry none, and GoTrue looks the secret up under the empty kid."""
    return {"kty": "oct", "k": b64url(jwt_secret.encode("utf-8")), "alg": "HS256"}
