"""Validates a restore test of the database with data, and reports it to AWS Backup.

EventBridge invokes it when a restore job of the environment's restore testing plan reaches
COMPLETED. It reads the restore canary (`supabase_ops.restore_canary`, written by
database/bootstrap.sql) on the restored instance and on the source primary, compares row
count and checksum, and reports SUCCESSFUL or FAILED with a message through
backup:PutRestoreValidationResult. Anything that stops the check (no endpoint, refused login,
missing table) is reported as FAILED with the reason, never left unreported.

Connects as the read-only role (its secret: RO_SECRET_ARN), which the platform never rotates,
so the password in a week-old recovery point still matches. TLS as `sslmode=require`: RDS
forces TLS, and the function carries no RDS CA bundle (the same trade-off as the exporters).

pg8000 (pure Python) is copied into the asset from the synthesizing virtualenv by
constructs_lib/restore_validation.py; no Docker, no network at synth.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
import pg8000.native

CANARY_SQL = (
    "SELECT count(*)::bigint, coalesce(md5(string_agg(id::text || ':' || payload, ',' ORDER BY id)), '') "
    "FROM supabase_ops.restore_canary"
)
MESSAGE_MAX = 1000  # keep the console's status message readable
CONNECT_TIMEOUT_SECONDS = 15


class Session(Protocol):
    def run(self, sql: str) -> list[list[Any]]: ...

    def close(self) -> None: ...


Connect = Callable[..., Session]


@dataclass(frozen=True)
class Canary:
    rows: int
    checksum: str

    def __str__(self) -> str:
        return f"{self.rows} rows, md5 {self.checksum[:12] or '-'}"


def connect(*, host: str, port: int, user: str, password: str, database: str) -> Session:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return pg8000.native.Connection(
        user=user,
        password=password,
        host=host,
        port=port,
        database=database,
        ssl_context=context,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )


def read_canary(conn: Session) -> Canary:
    try:
        ((rows, checksum),) = conn.run(CANARY_SQL)
        return Canary(rows=int(rows), checksum=str(checksum))
    finally:
        conn.close()


def db_identifier(created_resource_arn: str) -> str:
    """arn:aws:rds:<region>:<account>:db:<identifier> -> <identifier>."""
    parts = created_resource_arn.split(":", 6)
    if len(parts) != 7 or parts[2] != "rds" or parts[5] != "db" or not parts[6]:
        raise ValueError(f"not an RDS DB instance ARN: {created_resource_arn}")
    return parts[6]


def validate(
    event: dict,
    *,
    backup: Any,
    rds: Any,
    secrets: Any,
    secret_arn: str,
    source_host: str,
    source_port: int,
    database: str,
    connect: Connect = connect,
) -> dict[str, str]:
    detail = event["detail"]
    job_id = detail["restoreJobId"]
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=db_identifier(detail["createdResourceArn"]))[
            "DBInstances"
        ][0]
        credentials = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
        login = {"user": credentials["username"], "password": credentials["password"], "database": database}
        restored = read_canary(
            connect(host=instance["Endpoint"]["Address"], port=instance["Endpoint"]["Port"], **login)
        )
        source = read_canary(connect(host=source_host, port=source_port, **login))
        if restored.rows > 0 and restored == source:
            status, message = "SUCCESSFUL", f"restore canary matches the source: {restored}"
        else:
            status, message = "FAILED", f"restore canary differs: restored {restored}, source {source}"
    except Exception as error:  # every failure must reach AWS Backup as FAILED
        status, message = "FAILED", f"validation could not run: {type(error).__name__}: {error}"
    message = message[:MESSAGE_MAX]
    backup.put_restore_validation_result(RestoreJobId=job_id, ValidationStatus=status, ValidationStatusMessage=message)
    print(json.dumps({"restoreJobId": job_id, "validationStatus": status, "message": message}))
    return {"status": status, "message": message}


def handler(event: dict, _context: object) -> dict[str, str]:
    return validate(
        event,
        backup=boto3.client("backup"),
        rds=boto3.client("rds"),
        secrets=boto3.client("secretsmanager"),
        secret_arn=os.environ["RO_SECRET_ARN"],
        source_host=os.environ["SOURCE_HOST"],
        source_port=int(os.environ["SOURCE_PORT"]),
        database=os.environ["DB_NAME"],
    )
