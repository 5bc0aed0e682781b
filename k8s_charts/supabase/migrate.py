"""Chart `supabase-db-migrate`: the Job that applies the application's migrations.

It depends on the bootstrap chart and the services chart depends on it, so the platform stack
applies it after the bootstrap Job succeeded and rolls the services out only after this Job
succeeded (stacks/platform_stack.py: a dependency on a chart with Jobs waits for each Job's
`.status.succeeded`). A failing migration fails the Job, the wait times out, the platform stack's
deploy fails and the pipeline stops before the next stage: staging, then the approval, then prod.

The Job installs node-pg-migrate with `npm ci` from `database/migrate_tool/package-lock.json`
(versions and integrity hashes pinned; no lifecycle scripts) into an emptyDir, then runs it with
database.migrations.tool_args over the files of `supabase/migrations/`, mounted from a
ConfigMap. Its name carries a hash of the files, the tool and the image, so a new migration
makes a new Job (Job specs are immutable) and an unchanged one re-applies nothing.
"""

from __future__ import annotations

import hashlib
import json

import cdk8s
from constructs import Construct

from database.migrations import TOOL_PACKAGE, load_migrations, tool_args, tool_files
from database.roles import MASTER_USER
from k8s_charts.hardening import (
    SKIP_DIGEST,
    SKIP_SECRET_ENV,
    checkov_annotations,
    container_security_context,
    pod_security_context,
)
from k8s_charts.objects import DNS_EGRESS, service_account
from k8s_charts.supabase import images, rds_ca, secrets
from k8s_charts.supabase.k8s import api_object, labels, plain_env, secret_env
from k8s_charts.supabase.network import allow_selector, istiod_egress
from k8s_charts.supabase.props import NAMESPACE, SupabaseProps
from k8s_charts.supabase.workload import RUN_AS

COMPONENT = "db-migrate"
MIGRATIONS_MOUNT = "/migrations"
TOOL_SOURCE = "/tool-src"
TOOL_DIR = "/tool"
CREDENTIALS = "db-migrate-credentials"
MIGRATIONS_CONFIG_MAP = "db-migrations"
TOOL_CONFIG_MAP = "db-migrate-tool"
CA_CONFIG_MAP = "db-migrate-rds-ca"
# Falco's package-manager rule spares exactly this container of this Job
# (k8s_charts/falco/supabase_rules.yaml, macro supabase_migration_tool_install).
INSTALL_CONTAINER = "install-tool"
# Shorter than the platform stack's wait for the Job (stacks/platform_stack.JOB_TIMEOUT, 14 min;
# a test holds them apart): a run that overstays is killed, its transaction rolled back, before
# the deploy gives up, so a failed deploy never leaves a late migration committing behind it.
ACTIVE_DEADLINE_SECONDS = 12 * 60
# npm's registry, reached through the NAT gateways: https://docs.npmjs.com/cli/v11/using-npm/registry
NPM_REGISTRY_PORT = 443


def _container(name: str, command: list[str], env: list[dict], mounts: list[dict]) -> dict:
    return {
        "name": name,
        "image": images.NODE.ref,
        "imagePullPolicy": "Always",
        "command": command,
        "env": env,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "securityContext": container_security_context(RUN_AS),
        "volumeMounts": [*mounts, {"name": "tool", "mountPath": TOOL_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


class SupabaseDbMigrateChart(cdk8s.Chart):
    """Expects namespace `supabase` (created by SupabaseDbBootstrapChart) to exist."""

    def __init__(self, scope: Construct, id_: str, *, props: SupabaseProps) -> None:
        super().__init__(scope, id_)
        values = props.values
        migrations = {m.file_name: m.sql for m in load_migrations()}
        tool = tool_files()
        version = json.loads(tool["package.json"])["dependencies"][TOOL_PACKAGE]
        lbl = labels(COMPONENT, version)
        digest = hashlib.sha256(
            json.dumps([migrations, tool, images.NODE.ref, tool_args(MIGRATIONS_MOUNT)], sort_keys=True).encode()
        ).hexdigest()
        self.job_name = f"{COMPONENT}-{digest[:10]}"

        for name, data in ((MIGRATIONS_CONFIG_MAP, migrations), (TOOL_CONFIG_MAP, tool)):
            api_object(self, api_version="v1", kind="ConfigMap", name=name, labels=lbl, body={"data": data})
        rds_ca.add_config_map(self, region=values.region, labels=lbl, name=CA_CONFIG_MAP)
        # The chain is verified against the region's RDS roots, the host name is not: the Job
        # connects by the private CNAME (naming.db_host), which the instance's certificate does
        # not name, and a deploy-gating Job must not fail on that. (The bootstrap Job's psql
        # encrypts without verifying at all.)
        url = secrets.postgres_url(
            user=MASTER_USER,
            host=values.db_host,
            port=values.db_port,
            dbname=values.db_name,
            sslmode="verify-ca",
            sslrootcert=rds_ca.FILE,
            libpq_compat=True,
        )
        secrets.external_secret(
            self,
            name=CREDENTIALS,
            component=COMPONENT,
            version=version,
            props=props,
            remote=[secrets.role_password(MASTER_USER)],
            template={"DATABASE_URL": url},
        )
        service_account(self, f"ServiceAccount-{COMPONENT}", name=COMPONENT, namespace=NAMESPACE, labels=lbl)
        api_object(
            self,
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            name=COMPONENT,
            labels=lbl,
            body={
                "spec": {
                    "podSelector": allow_selector({"app.kubernetes.io/name": COMPONENT}),
                    "policyTypes": ["Ingress", "Egress"],
                    "egress": [
                        DNS_EGRESS,
                        {
                            "to": [{"ipBlock": {"cidr": values.vpc_cidr}}],
                            "ports": [{"protocol": "TCP", "port": values.db_port}],
                        },
                        # `npm ci` fetches the locked tarballs from the public registry; HTTPS
                        # only and never into the VPC.
                        {
                            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [values.vpc_cidr]}}],
                            "ports": [{"protocol": "TCP", "port": NPM_REGISTRY_PORT}],
                        },
                        # Runs before the services chart's allow-istiod policy exists.
                        *([istiod_egress()] if props.istio else []),
                    ],
                }
            },
        )
        home = {"HOME": "/tmp", "npm_config_cache": "/tmp/npm", "npm_config_update_notifier": "false"}
        install = _container(
            INSTALL_CONTAINER,
            [
                "sh",
                "-c",
                f"cp {TOOL_SOURCE}/package.json {TOOL_SOURCE}/package-lock.json {TOOL_DIR}/ && "
                f"exec npm ci --prefix {TOOL_DIR} --omit=dev --ignore-scripts --no-audit --no-fund",
            ],
            plain_env(home),
            [{"name": "tool-src", "mountPath": TOOL_SOURCE, "readOnly": True}],
        )
        migrate = _container(
            COMPONENT,
            ["node", f"{TOOL_DIR}/node_modules/{TOOL_PACKAGE}/bin/{TOOL_PACKAGE}.js", *tool_args(MIGRATIONS_MOUNT)],
            [*plain_env({**home, "PGAPPNAME": "supabase-db-migrate"}), secret_env("DATABASE_URL", CREDENTIALS)],
            [{"name": "migrations", "mountPath": MIGRATIONS_MOUNT, "readOnly": True}, rds_ca.mount()],
        )
        skips = (SKIP_DIGEST, SKIP_SECRET_ENV)
        self.job = api_object(
            self,
            api_version="batch/v1",
            kind="Job",
            name=self.job_name,
            labels=lbl,
            annotations=checkov_annotations(skips),
            body={
                "spec": {
                    # A failed migration is rolled back; retrying cannot fix the SQL, so fail fast
                    # (one retry covers a node lost mid-run) and let the deploy stop.
                    "backoffLimit": 1,
                    "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": lbl},
                        "spec": {
                            "serviceAccountName": COMPONENT,
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "restartPolicy": "Never",
                            "securityContext": pod_security_context(RUN_AS),
                            "initContainers": [install],
                            "containers": [migrate],
                            "volumes": [
                                {
                                    "name": "migrations",
                                    "configMap": {"name": MIGRATIONS_CONFIG_MAP, "defaultMode": 0o444},
                                },
                                {"name": "tool-src", "configMap": {"name": TOOL_CONFIG_MAP, "defaultMode": 0o444}},
                                rds_ca.volume(CA_CONFIG_MAP),
                                {"name": "tool", "emptyDir": {"sizeLimit": "256Mi"}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                            ],
                        },
                    },
                }
            },
        )
