"""The new Supabase key kinds: ES256 signing keys published as a JWKS, and opaque API keys.

Standard library only, on purpose. The function ships as a plain folder (`Code.from_asset`,
no Docker bundling, see VERIFY.md), and `cryptography` is a compiled wheel per platform and
Python version: bundling it would mean downloading an arm64 wheel at synth time. ES256 is
ECDSA over P-256 with SHA-256 (RFC 7518 section 3.4), which fits in the arithmetic below. The
tests verify every token this module signs with PyJWT + `cryptography` (an independent
implementation), and every token PyJWT signs with this module's verifier.

Python's integers are not constant-time. That matters where an attacker can time many
signatures made with one key; this code signs a handful of tokens per deployment or rotation
inside a Lambda nobody else can call, so there is no such oracle.

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
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# NIST P-256 (FIPS 186-4 D.1.2.3 / SEC 2 secp256r1).
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_A = _P - 3
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
_Point = tuple[int, int] | None  # None is the point at infinity

PUBLISHABLE_PREFIX = "sb_publishable_"
SECRET_PREFIX = "sb_secret_"
# Upstream's self-hosted project ref, part of the opaque keys' checksum.
PROJECT_REF = "supabase-self-hosted"
_OPAQUE_RANDOM_CHARS = 22
_OPAQUE_CHECKSUM_CHARS = 8


class KeySetError(ValueError):
    """A stored key is malformed; the message names the key, never its value."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


def _b64_int(text: str) -> int:
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise KeySetError("P-256 coordinates are 32 bytes")
    return int.from_bytes(raw, "big")


def _on_curve(point: _Point) -> bool:
    if point is None:
        return False
    x, y = point
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x * x + _A * x + _B)) % _P == 0


def _add(p1: _Point, p2: _Point) -> _Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % _P == 0:
        return None
    # Tangent when doubling, chord otherwise.
    numerator, denominator = (3 * x1 * x1 + _A, 2 * y1) if p1 == p2 else (y2 - y1, x2 - x1)
    slope = numerator * pow(denominator, -1, _P) % _P
    x3 = (slope * slope - x1 - x2) % _P
    return x3, (slope * (x1 - x3) - y1) % _P


def _mul(k: int, point: _Point) -> _Point:
    result: _Point = None
    addend = point
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """One ES256 key; `d` is None when only the public half is kept (a retired key)."""

    kid: str
    x: int
    y: int
    d: int | None = None

    def __post_init__(self) -> None:
        if not _on_curve((self.x, self.y)):
            raise KeySetError(f"signing key {self.kid}: the point is not on P-256")
        if self.d is not None and (not 1 <= self.d < _N or _mul(self.d, _G) != (self.x, self.y)):
            raise KeySetError(f"signing key {self.kid}: the private scalar does not match the public point")

    @classmethod
    def generate(cls) -> SigningKey:
        d = secrets.randbelow(_N - 1) + 1
        point = _mul(d, _G)
        assert point is not None  # d is in [1, n-1], so dG is never infinity
        return cls(kid=str(uuid.uuid4()), x=point[0], y=point[1], d=d)

    @property
    def public(self) -> SigningKey:
        return SigningKey(kid=self.kid, x=self.x, y=self.y)

    def jwk(self, *, private: bool = False, sign: bool = False) -> dict[str, Any]:
        key: dict[str, Any] = {
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["sign", "verify"] if sign else ["verify"],
            "x": _int_b64(self.x),
            "y": _int_b64(self.y),
        }
        if private:
            if self.d is None:
                raise KeySetError(f"signing key {self.kid} has no private half")
            key["d"] = _int_b64(self.d)
        return key

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> SigningKey:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or not jwk.get("kid"):
            raise KeySetError("signing keys are EC P-256 JWKs with a kid")
        try:
            d = _b64_int(jwk["d"]) if "d" in jwk else None
            return cls(kid=str(jwk["kid"]), x=_b64_int(jwk["x"]), y=_b64_int(jwk["y"]), d=d)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, KeySetError):
                raise
            raise KeySetError(f"signing key {jwk.get('kid')}: malformed coordinates") from None

    def sign(self, message: bytes) -> bytes:
        if self.d is None:
            raise KeySetError(f"signing key {self.kid} has no private half")
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        while True:
            k = secrets.randbelow(_N - 1) + 1
            point = _mul(k, _G)
            assert point is not None
            r = point[0] % _N
            s = pow(k, -1, _N) * (e + r * self.d) % _N
            if r and s:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verifies(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (1 <= r < _N and 1 <= s < _N):
            return False
        e = int.from_bytes(hashlib.sha256(message).digest(), "big")
        w = pow(s, -1, _N)
        point = _add(_mul(e * w % _N, _G), _mul(r * w % _N, (self.x, self.y)))
        return point is not None and point[0] % _N == r


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_es256(claims: Mapping[str, Any], key: SigningKey) -> str:
    header = {"alg": "ES256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{b64url(_compact_json(header))}.{b64url(_compact_json(claims))}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def verified_es256_claims(token: str, keys: list[SigningKey]) -> dict[str, Any] | None:
    """The claims of `token` if one of `keys` (chosen by `kid`) signed it with ES256, else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError:
        return None
    # Pinning the algorithm refuses "alg": "none" and HS256-with-the-public-key confusion.
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        return None
    key = next((k for k in keys if k.kid == header.get("kid")), None)
    if key is None or not key.verifies(f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
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
