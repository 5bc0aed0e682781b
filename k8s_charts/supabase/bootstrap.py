"""Chart `supabase-db-bootstrap`: namespace + the one-shot Job that prepares RDS for Supabase.

Applied before the services chart: the cluster stack waits for the Job's
`status.succeeded` == 1, since every component fails without the roles and schemas. The Job
name carries a hash of the SQL, so a changed bootstrap runs again (Job specs are immutable).
"""

from __future__ import annotations

import hashlib

import cdk8s
from constructs import Construct

from database.bootstrap import BOOTSTRAP_SQL, password_env_var, psql_args
from database.roles import DATABASE_LOGIN_ROLES, MASTER_USER
from k8s_charts.hardening import (
    SKIP_DIGEST,
    SKIP_SECRET_ENV,
    checkov_annotations,
    container_security_context,
    pod_security_context,
)
from k8s_charts.mesh import INJECTION_LABEL
from k8s_charts.objects import DNS_EGRESS, service_account
from k8s_charts.supabase import images, secrets
from k8s_charts.supabase.k8s import api_object, labels, plain_env, secret_env
from k8s_charts.supabase.network import allow_selector, istiod_egress
from k8s_charts.supabase.props import NAMESPACE, PART_OF, SupabaseProps
from k8s_charts.supabase.workload import RUN_AS

COMPONENT = "db-bootstrap"
SQL_DIR = "/bootstrap"
SQL_FILE = "bootstrap.sql"
CREDENTIALS = "db-bootstrap-credentials"


def namespace_labels(*, istio: bool) -> dict[str, str]:
    # Injected sidecars stay within Pod Security restricted: istio-cni sets up the traffic
    # redirection, so no istio-init container with NET_ADMIN/NET_RAW is added.
    key, value = INJECTION_LABEL
    injection = {key: value} if istio else {}
    return {
        "kubernetes.io/metadata.name": NAMESPACE,
        "app.kubernetes.io/part-of": PART_OF,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
        **injection,
    }


class SupabaseDbBootstrapChart(cdk8s.Chart):
    def __init__(self, scope: Construct, id_: str, *, props: SupabaseProps) -> None:
        super().__init__(scope, id_)
        values = props.values
        version = images.POSTGRES_CLIENT.tag
        lbl = labels(COMPONENT, version)
        sql_hash = hashlib.sha256(BOOTSTRAP_SQL.encode()).hexdigest()
        self.job_name = f"{COMPONENT}-{sql_hash[:10]}"

        self.namespace_object = api_object(
            self,
            api_version="v1",
            kind="Namespace",
            name=NAMESPACE,
            labels=namespace_labels(istio=props.istio),
            body={},
            namespaced=False,
        )
        api_object(
            self,
            api_version="v1",
            kind="ConfigMap",
            name="db-bootstrap-sql",
            labels=lbl,
            body={"data": {SQL_FILE: BOOTSTRAP_SQL}},
        )
        role_values = [secrets.role_password(r.name) for r in DATABASE_LOGIN_ROLES]
        template = {
            password_env_var(r.password_variable): secrets.ref(v)
            for r, v in zip(DATABASE_LOGIN_ROLES, role_values, strict=False)
        }
        template["PGPASSWORD"] = secrets.ref(secrets.MASTER_PASSWORD)
        secrets.external_secret(
            self,
            name=CREDENTIALS,
            component=COMPONENT,
            version=version,
            props=props,
            remote=[secrets.MASTER_PASSWORD, *role_values],
            template=template,
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
                        # The Job runs before the services chart's allow-istiod policy exists,
                        # and its native sidecar must be ready before psql starts.
                        *([istiod_egress()] if props.istio else []),
                    ],
                }
            },
        )
        env = plain_env(
            {
                "PGHOST": values.db_host,
                "PGPORT": str(values.db_port),
                "PGDATABASE": values.db_name,
                "PGUSER": MASTER_USER,
                "PGSSLMODE": "require",
                "PGCONNECT_TIMEOUT": "10",
                "PGAPPNAME": "supabase-db-bootstrap",
                "HOME": "/tmp",
            }
        ) + [secret_env(name, CREDENTIALS) for name in template]
        container = {
            "name": COMPONENT,
            "image": images.POSTGRES_CLIENT.ref,
            "imagePullPolicy": "Always",
            "command": ["psql"],
            "args": psql_args(f"{SQL_DIR}/{SQL_FILE}"),
            "env": env,
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "securityContext": container_security_context(RUN_AS),
            "volumeMounts": [
                {"name": "sql", "mountPath": SQL_DIR, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
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
                    "backoffLimit": 6,
                    "activeDeadlineSeconds": 1800,
                    # Long enough for the cluster stack to observe success, short enough to clean up.
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": lbl},
                        "spec": {
                            "serviceAccountName": COMPONENT,
                            "automountServiceAccountToken": False,
                            "enableServiceLinks": False,
                            "restartPolicy": "Never",
                            "securityContext": pod_security_context(RUN_AS),
                            "containers": [container],
                            "volumes": [
                                {"name": "sql", "configMap": {"name": "db-bootstrap-sql", "defaultMode": 0o444}},
                                {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                            ],
                        },
                    },
                }
            },
        )
        for child in self.node.children:
            if child is not self.namespace_object:
                child.node.add_dependency(self.namespace_object)
