"""The new key kinds: ES256 tokens checked by an independent verifier (a JWKS verifier as the
services run it, and OpenSSL's own CLI), opaque keys in upstream's shape, and the signing-key
rotation in the API keys secret (moto)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ops.mint_api_keys import handler, keyset
from tests.unit import test_mint_api_keys as minter
from tests.unit.test_mint_api_keys import NOW, settings, stored, versions

aws = minter.aws  # the same moto fixture: a JWT secret and an empty API keys secret

# Upstream's shape (supabase/supabase docker/utils/add-new-auth-keys.sh): prefix, 22 base64url
# characters, "_", 8 base64url characters of SHA-256("supabase-self-hosted|" + prefix + random).
OPAQUE = re.compile(r"^(sb_publishable_|sb_secret_)([A-Za-z0-9_-]{22})_([A-Za-z0-9_-]{8})$")


def jwks_client(jwks_text: str) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(json.loads(jwks_text))


def verify(token: str, jwks_text: str) -> dict:
    """A JWKS verifier as PostgREST, Realtime and Storage run it: key by kid, algorithm from the key."""
    kid = jwt.get_unverified_header(token).get("kid")
    keys = [k for k in jwks_client(jwks_text).keys if k.key_id == kid]
    if not keys:
        raise jwt.InvalidKeyError(f"no key {kid} in the JWKS")
    return jwt.decode(token, keys[0].key, algorithms=[keys[0].algorithm_name], options={"verify_exp": False})


class TestEs256:
    def test_pyjwt_verifies_our_tokens_and_we_verify_pyjwts(self):
        key = keyset.SigningKey.generate()
        ours = keyset.sign_es256({"role": "anon", "iss": "supabase"}, key)
        assert jwt.get_unverified_header(ours) == {"alg": "ES256", "typ": "JWT", "kid": key.kid}
        assert jwt.decode(ours, jwt.PyJWK(key.jwk()).key, algorithms=["ES256"])["role"] == "anon"
        theirs = jwt.encode(
            {"sub": "alice"}, jwt.PyJWK(key.jwk(private=True)).key, algorithm="ES256", headers={"kid": key.kid}
        )
        assert keyset.verified_es256_claims(theirs, [key.public]) == {"sub": "alice"}

    def test_tampered_foreign_and_downgraded_tokens_are_refused(self):
        key, other = keyset.SigningKey.generate(), keyset.SigningKey.generate()
        token = keyset.sign_es256({"role": "anon"}, key)
        head, _, sig = token.split(".")
        forged = f"{head}.{keyset.b64url(json.dumps({'role': 'service_role'}).encode())}.{sig}"
        assert keyset.verified_es256_claims(forged, [key]) is None
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(forged, jwt.PyJWK(key.jwk()).key, algorithms=["ES256"])
        assert keyset.verified_es256_claims(token, [other]) is None  # kid not among the keys
        same_kid = keyset.SigningKey(kid=key.kid, key=other.public_key)
        assert keyset.verified_es256_claims(token, [same_kid]) is None  # right kid, wrong key
        hs = jwt.encode({"role": "service_role"}, "x" * 32, algorithm="HS256", headers={"kid": key.kid})
        assert keyset.verified_es256_claims(hs, [key]) is None
        unsigned = keyset.b64url(json.dumps({"alg": "none"}).encode()) + "." + token.split(".")[1] + "."
        assert keyset.verified_es256_claims(unsigned, [key]) is None

    def test_keys_off_the_curve_or_with_a_foreign_scalar_are_refused(self):
        key, other = keyset.SigningKey.generate().jwk(private=True), keyset.SigningKey.generate().jwk(private=True)
        public = {k: v for k, v in key.items() if k != "d"}
        for bad in (
            {**public, "y": other["y"]},  # a point off the curve
            {**key, "d": other["d"]},  # a private scalar of another key
            {**public, "x": "AA"},  # not 32 bytes
        ):
            with pytest.raises(keyset.KeySetError, match="not a valid P-256 key"):
                keyset.SigningKey.from_jwk(bad)
        with pytest.raises(keyset.KeySetError, match="EC P-256 JWKs with a kid"):
            keyset.SigningKey.from_jwk({**public, "crv": "P-384"})
        assert keyset.SigningKey.from_jwk(key) == keyset.SigningKey.from_jwk(key)
        assert keyset.SigningKey.from_jwk(key) != keyset.SigningKey.from_jwk(public)

    def test_openssl_verifies_our_signatures(self, tmp_path):
        """A verifier that shares no code with PyJWT: the OpenSSL CLI, over the JWKS's public key."""
        if shutil.which("openssl") is None:
            pytest.skip("no openssl CLI")
        key = keyset.SigningKey.generate()
        token = keyset.sign_es256({"role": "anon"}, key)
        signing_input, signature = token.rsplit(".", 1)
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        # JWS carries r || s (RFC 7518 section 3.4); OpenSSL reads DER.
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        (tmp_path / "sig.der").write_bytes(encode_dss_signature(r, s))
        (tmp_path / "input").write_bytes(signing_input.encode())
        public = jwt.PyJWK(key.jwk()).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        (tmp_path / "pub.pem").write_bytes(public)
        openssl = ["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der"]
        ok = subprocess.run([*openssl, "input"], cwd=tmp_path, capture_output=True, text=True)
        assert ok.returncode == 0 and "Verified OK" in ok.stdout
        (tmp_path / "tampered").write_bytes(signing_input.encode() + b"x")
        assert subprocess.run([*openssl, "tampered"], cwd=tmp_path, capture_output=True).returncode != 0


class TestOpaqueKeys:
    @pytest.mark.parametrize("prefix", [keyset.PUBLISHABLE_PREFIX, keyset.SECRET_PREFIX])
    def test_upstream_shape_and_checksum(self, prefix):
        for _ in range(50):  # the random part and the checksum may both contain "_"
            key = keyset.opaque_key(prefix)
            match = OPAQUE.match(key)
            assert match and match.group(1) == prefix
            digest = hashlib.sha256(f"supabase-self-hosted|{prefix}{match.group(2)}".encode()).digest()
            assert match.group(3) == base64.urlsafe_b64encode(digest).decode()[:8]
            assert keyset.opaque_key_valid(key, prefix)

    def test_typos_and_the_other_kind_are_invalid(self):
        key = keyset.opaque_key(keyset.SECRET_PREFIX)
        flipped = key[:12] + ("A" if key[12] != "A" else "B") + key[13:]
        assert not keyset.opaque_key_valid(flipped, keyset.SECRET_PREFIX)
        assert not keyset.opaque_key_valid(key[:-1], keyset.SECRET_PREFIX)
        assert not keyset.opaque_key_valid(key, keyset.PUBLISHABLE_PREFIX)
        assert not keyset.opaque_key_valid(None, keyset.SECRET_PREFIX)


class TestMintedKeySet:
    def test_one_secret_holds_both_kinds(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        keys = stored(client, keys_arn)
        assert keyset.opaque_key_valid(keys["publishable_key"], "sb_publishable_")
        assert keyset.opaque_key_valid(keys["secret_key"], "sb_secret_")
        assert verify(keys["anon_key_asymmetric"], keys["jwks"])["role"] == "anon"
        assert verify(keys["service_role_key_asymmetric"], keys["jwks"])["role"] == "service_role"
        # The legacy keys verify through the same JWKS (its oct key) while the switch is on.
        assert verify(keys["anon_key"], keys["jwks"])["role"] == "anon"

    def test_jwks_is_public_and_gotrue_gets_exactly_one_signing_key(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        keys = stored(client, keys_arn)
        ec = [k for k in json.loads(keys["jwks"])["keys"] if k["kty"] == "EC"]
        assert len(ec) == 1 and all("d" not in k for k in ec) and ec[0]["kid"]
        gotrue = json.loads(keys["jwt_keys"])
        # supabase/auth internal/conf/jwk.go: exactly one key with key_ops "sign", used to sign.
        signers = [k for k in gotrue if "sign" in k.get("key_ops", [])]
        assert len(signers) == 1 and signers[0]["kid"] == ec[0]["kid"] and "d" in signers[0]
        user = jwt.encode(
            {"sub": "alice", "role": "authenticated"},
            jwt.PyJWK(signers[0]).key,
            algorithm="ES256",
            headers={"kid": signers[0]["kid"]},
        )
        assert verify(user, keys["jwks"])["sub"] == "alice"

    def test_legacy_switch_off_removes_legacy_keys_and_refuses_hs256(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        legacy_anon = stored(client, keys_arn)["anon_key"]
        result = handler.remint(settings(jwt_arn, keys_arn, legacy_api_keys=False), client=client, now=NOW)
        keys = stored(client, keys_arn)
        assert result.reminted and "legacy API keys are switched off" in result.reason
        assert "anon_key" not in keys and "service_role_key" not in keys
        assert all(k["kty"] == "EC" for k in json.loads(keys["jwks"])["keys"] + json.loads(keys["jwt_keys"]))
        with pytest.raises(jwt.InvalidKeyError):
            verify(legacy_anon, keys["jwks"])
        # Switched back on, they return, re-minted from the JWT secret.
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        assert verify(stored(client, keys_arn)["anon_key"], stored(client, keys_arn)["jwks"])["role"] == "anon"

    def test_switched_off_it_needs_no_jwt_secret(self, aws):
        client, jwt_arn, keys_arn = aws
        client.delete_secret(SecretId=jwt_arn, ForceDeleteWithoutRecovery=True)
        result = handler.remint(settings(jwt_arn, keys_arn, legacy_api_keys=False), client=client, now=NOW)
        assert result.reminted and "anon_key" not in stored(client, keys_arn)

    def test_forced_create_keeps_signing_and_opaque_keys(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        before = stored(client, keys_arn)
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW + 60, force=True)
        after = stored(client, keys_arn)
        for field in ("signing_keys", "publishable_key", "secret_key", "jwks", "jwt_keys"):
            assert after[field] == before[field], field
        assert verify(after["anon_key_asymmetric"], after["jwks"])["iat"] == NOW + 60

    def test_unreadable_signing_keys_stop_the_mint(self, aws):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        keys = stored(client, keys_arn)
        keys["signing_keys"] = json.dumps({"current": {"kty": "EC", "crv": "P-256", "kid": "k", "x": "AA", "y": "AA"}})
        client.put_secret_value(SecretId=keys_arn, SecretString=json.dumps(keys))
        with pytest.raises(handler.MintError, match=r"signing keys are unreadable .*fix: restore"):
            handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        assert versions(client, keys_arn) == 2


class TestRotation:
    def test_prepare_activate_retire(self, aws):
        client, jwt_arn, keys_arn = aws
        config = settings(jwt_arn, keys_arn)
        old_kid = handler.remint(config, client=client, now=NOW).signing_key_id
        minted = stored(client, keys_arn)

        prepared = handler.remint(config, client=client, now=NOW + 60, rotate="prepare")
        keys = stored(client, keys_arn)
        kids = [k["kid"] for k in json.loads(keys["jwks"])["keys"] if k["kty"] == "EC"]
        assert prepared.signing_key_id == old_kid and len(kids) == 2 and old_kid in kids
        assert keys["anon_key_asymmetric"] == minted["anon_key_asymmetric"]  # nothing signs with it yet
        new_kid = next(k for k in kids if k != old_kid)

        activated = handler.remint(config, client=client, now=NOW + 120, rotate="activate")
        keys = stored(client, keys_arn)
        assert activated.signing_key_id == new_kid
        assert jwt.get_unverified_header(keys["anon_key_asymmetric"])["kid"] == new_kid
        assert verify(minted["anon_key_asymmetric"], keys["jwks"])["role"] == "anon"  # old still verifies
        for field in ("publishable_key", "secret_key"):
            assert keys[field] == minted[field]  # what clients embed does not change
        signers = [k for k in json.loads(keys["jwt_keys"]) if "sign" in k.get("key_ops", [])]
        assert [k["kid"] for k in signers] == [new_kid]

        handler.remint(config, client=client, now=NOW + 180, rotate="retire")
        keys = stored(client, keys_arn)
        assert [k["kid"] for k in json.loads(keys["jwks"])["keys"] if k["kty"] == "EC"] == [new_kid]
        with pytest.raises(jwt.InvalidKeyError):
            verify(minted["anon_key_asymmetric"], keys["jwks"])
        assert not handler.remint(config, client=client, now=NOW + 240).reminted

    @pytest.mark.parametrize(
        ("steps", "message"),
        [
            (["activate"], "no key is prepared; fix: run prepare"),
            (["retire"], "no previous key is published; fix: run activate"),
            (["prepare", "prepare"], "is already prepared; fix: run activate"),
            (["spin"], "rotate must be one of prepare, activate, retire"),
        ],
    )
    def test_steps_out_of_order_are_refused_without_a_write(self, aws, steps, message):
        client, jwt_arn, keys_arn = aws
        handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW)
        *ok, bad = steps
        for step in ok:
            handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW, rotate=step)
        written = versions(client, keys_arn)
        with pytest.raises(handler.MintError, match=message):
            handler.remint(settings(jwt_arn, keys_arn), client=client, now=NOW, rotate=bad)
        assert versions(client, keys_arn) == written

    def test_rotation_by_direct_invocation(self, aws, monkeypatch):
        client, jwt_arn, keys_arn = aws
        monkeypatch.setenv("JWT_SECRET_ARN", jwt_arn)
        monkeypatch.setenv("API_KEYS_SECRET_ARN", keys_arn)
        monkeypatch.setenv("LEGACY_API_KEYS", "false")
        first = handler.on_event({}, None, client=client)
        prepared = handler.on_event({"rotate": "prepare"}, None, client=client)
        assert (
            prepared["reminted"]
            and prepared["reason"]
            == "rotation step prepare; jwks differs from the signing keys; jwt_keys differs from the signing keys"
        )
        assert prepared["signingKeyId"] == first["signingKeyId"]
        monkeypatch.setenv("LEGACY_API_KEYS", "maybe")
        with pytest.raises(handler.MintError, match="LEGACY_API_KEYS must be true or false"):
            handler.on_event({}, None, client=client)


def test_the_asset_folder_runs_on_its_own(tmp_path):
    """Lambda imports handler.py from the asset root, where `ops` is no package: keyset must load beside it.

    PyJWT and cryptography come from the venv here, at the pins the layer ships (Lambda reads them
    from /opt/python; tests/unit/test_lambda_deps.py checks the layer's wheels)."""
    folder = Path(handler.__file__).parent
    for name in ("handler.py", "keyset.py"):
        (tmp_path / name).write_text((folder / name).read_text())
    script = (
        "import handler; k = handler.keyset.SigningKey.generate(); "
        "print(handler.keyset.__name__, handler.keyset.verified_es256_claims(handler.keyset.sign_es256({'a': 1}, k), [k]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["keyset", "{'a':", "1}"]
