"""The database URL `make migrate` and `make drift` use for an environment, resolved at run time.

Nothing here runs at synth: the URL is built when a developer runs the target, from
`DATABASE_URL` when set (any URL node-postgres accepts), otherwise from the environment's RDS
master secret (`<project>/<env>/db/master`: username, password, host, port, dbname) read
with the caller's AWS credentials for that account. RDS sits in private subnets, so from a
laptop the host is reached through a tunnel: `PGHOST`/`PGPORT` name its local end. TLS is
always on and always checked against the region's RDS roots (k8s_charts.supabase.rds_ca);
through a tunnel the certificate cannot name 127.0.0.1, so there the chain is verified
without the host name (libpq's verify-ca).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from config import naming
from config.model import OrgConfig


def master_secret_name(cfg: OrgConfig, env_name: str) -> str:
    return naming.secret_name(cfg, env_name, naming.SecretKeys.DB_MASTER)


def ca_file(region: str) -> Path:
    # Imported here: k8s_charts starts the cdk8s (jsii) runtime, which `make migrate` and
    # `make drift` with DATABASE_URL set never need.
    from k8s_charts.supabase.rds_ca import region_pem

    path = Path(tempfile.gettempdir()) / f"rds-ca-{region}.pem"
    path.write_text(region_pem(region))
    return path


def database_url(
    cfg: OrgConfig, env_name: str, *, secrets_client: Any = None, environ: dict[str, str] | None = None
) -> str:
    environ = dict(os.environ) if environ is None else environ
    if environ.get("DATABASE_URL"):
        return environ["DATABASE_URL"]
    if env_name not in cfg.environments:
        raise ValueError(
            f"ENV={env_name!r} given; it is not an environment of this config ({', '.join(cfg.environments)}); "
            "fix: name one of them, or set DATABASE_URL"
        )
    env = cfg.environments[env_name]
    if secrets_client is None:
        import boto3

        secrets_client = boto3.client("secretsmanager", region_name=env.region)
    secret = json.loads(secrets_client.get_secret_value(SecretId=master_secret_name(cfg, env_name))["SecretString"])
    tunnel = "PGHOST" in environ
    host = environ.get("PGHOST", secret["host"])
    port = environ.get("PGPORT", str(secret.get("port", 5432)))
    dbname = secret.get("dbname", "postgres")
    ca = ca_file(env.region)
    tls = (
        f"uselibpqcompat=true&sslmode=verify-ca&sslrootcert={ca}" if tunnel else f"sslmode=verify-full&sslrootcert={ca}"
    )
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?{tls}"
