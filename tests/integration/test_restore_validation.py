"""The restore-test validation function against moto and PostgreSQL 17.

The "restored instance" is a copy of a bootstrapped database (CREATE DATABASE ... TEMPLATE,
a byte copy of its files, as a snapshot restore is), the "source" the bootstrapped database
itself; the function reads both over TLS with pg8000 as the read-only role. Secrets Manager
and RDS (DescribeDBInstances) are moto's. moto 5.2.5 implements neither restore jobs nor
PutRestoreValidationResult, so that one call goes to botocore's Stubber, which still checks
the request against the Backup API model.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import boto3
import psycopg
import pytest
from botocore.stub import ANY, Stubber

from database.parameters import DATABASE_NAME
from ops.restore_validation import handler
from tests.integration.conftest import PostgresServer, bootstrapped_database

REGION = "eu-west-1"
SOURCE = "canary_source"
SOURCE_HOST = "db.staging.supabase.internal"
RESTORED_ID = "awsbackup-restore-test-7f3a9c"
JOB_ID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
PLAN_ARN = f"arn:aws:backup:{REGION}:123456789012:restore-testing-plan:supabase_staging-8a7b6c"


@pytest.fixture(scope="module")
def source_passwords(postgres_server: PostgresServer) -> dict[str, str]:
    return bootstrapped_database(postgres_server, SOURCE)


def restored_copy(server: PostgresServer, name: str, *, change: str | None = None) -> str:
    """A byte copy of the source database, optionally changed afterwards (as the master)."""
    server.superuser_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', dbname="postgres")
    server.superuser_sql(f'CREATE DATABASE "{name}" TEMPLATE "{SOURCE}" OWNER supabase_admin', dbname="postgres")
    if change:
        with psycopg.connect(server.conninfo(dbname=name), autocommit=True) as conn:
            conn.execute(change)
    return name


@pytest.fixture(scope="module")
def aws(moto_endpoint, source_passwords) -> Iterator[dict]:
    """The read-only login's secret and the restored instance, in a freshly reset moto, once
    for the module: every test reads the same two and none changes them (the one write, the
    validation result, goes to the Stubber)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": moto_endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=5).close()
        yield _aws_resources(source_passwords)


def _aws_resources(source_passwords: dict[str, str]) -> dict:
    secrets = boto3.client("secretsmanager")
    secret_arn = secrets.create_secret(
        Name="supabase/staging/db/supabase_read_only_user",
        SecretString=json.dumps(
            {"username": "supabase_read_only_user", "password": source_passwords["supabase_read_only_user"]}
        ),
    )["ARN"]
    rds = boto3.client("rds")
    instance = rds.create_db_instance(
        DBInstanceIdentifier=RESTORED_ID,
        Engine="postgres",
        DBInstanceClass="db.t4g.medium",
        AllocatedStorage=20,
        MasterUsername="supabase_admin",
        MasterUserPassword="not-used-by-the-check",
    )["DBInstance"]
    return {"secrets": secrets, "rds": rds, "secret_arn": secret_arn, "instance": instance}


def completed_event(aws: dict) -> dict:
    """The event AWS Backup sends when a restore testing job completes (fields as documented)."""
    return {
        "version": "0",
        "detail-type": "Restore Job State Change",
        "source": "aws.backup",
        "account": "123456789012",
        "region": REGION,
        "detail": {
            "restoreJobId": JOB_ID,
            "status": "COMPLETED",
            "resourceType": "RDS",
            "createdResourceArn": aws["instance"]["DBInstanceArn"],
            "restoreTestingPlanArn": PLAN_ARN,
            "sourceResourceArn": f"arn:aws:rds:{REGION}:123456789012:db:supabase-staging",
        },
    }


def run(server: PostgresServer, aws: dict, restored: str, expected_status: str) -> dict[str, str]:
    """The handler with real clients, and one name resolution: each endpoint it is given maps
    to its database on the test server. The connection itself is the handler's own (pg8000)."""
    hosts = {aws["instance"]["Endpoint"]["Address"]: restored, SOURCE_HOST: SOURCE}

    def resolve(*, host: str, port: int, user: str, password: str, database: str) -> handler.Session:
        assert database == DATABASE_NAME
        return handler.connect(host=server.host, port=server.port, user=user, password=password, database=hosts[host])

    backup = boto3.client("backup")
    with Stubber(backup) as stub:
        stub.add_response(
            "put_restore_validation_result",
            {},
            {"RestoreJobId": JOB_ID, "ValidationStatus": expected_status, "ValidationStatusMessage": ANY},
        )
        result = handler.validate(
            completed_event(aws),
            backup=backup,
            rds=aws["rds"],
            secrets=aws["secrets"],
            secret_arn=aws["secret_arn"],
            source_host=SOURCE_HOST,
            source_port=5432,
            database=DATABASE_NAME,
            connect=resolve,
        )
        stub.assert_no_pending_responses()
    assert result["status"] == expected_status
    return result


def test_matching_rows_report_successful(postgres_server, aws):
    result = run(postgres_server, aws, restored_copy(postgres_server, "canary_restored_ok"), "SUCCESSFUL")
    assert "1000 rows" in result["message"]


def test_a_changed_row_reports_failed(postgres_server, aws):
    restored = restored_copy(
        postgres_server,
        "canary_restored_changed",
        change="UPDATE supabase_ops.restore_canary SET payload = 'damaged' WHERE id = 500",
    )
    result = run(postgres_server, aws, restored, "FAILED")
    assert "differs" in result["message"] and "1000 rows" in result["message"]


def test_missing_rows_report_failed(postgres_server, aws):
    restored = restored_copy(
        postgres_server, "canary_restored_short", change="DELETE FROM supabase_ops.restore_canary WHERE id > 990"
    )
    result = run(postgres_server, aws, restored, "FAILED")
    assert "restored 990 rows" in result["message"]


def test_a_database_without_the_canary_reports_failed(postgres_server, aws):
    """A restore of the wrong database, or of one never bootstrapped, is a failure too."""
    restored = restored_copy(postgres_server, "canary_restored_bare", change="DROP SCHEMA supabase_ops CASCADE")
    result = run(postgres_server, aws, restored, "FAILED")
    assert "could not run" in result["message"] and "restore_canary" in result["message"]


def test_an_unknown_instance_reports_failed(postgres_server, aws):
    aws = {**aws, "instance": {**aws["instance"], "DBInstanceArn": aws["instance"]["DBInstanceArn"] + "-gone"}}
    result = run(postgres_server, aws, "unused", "FAILED")
    assert "DBInstanceNotFound" in result["message"]
