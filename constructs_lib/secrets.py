"""Every Secrets Manager secret of one environment's data tier, under `naming.secret_prefix`.

Names and JSON fields follow `config.naming.SecretKeys` and `database.roles.LOGIN_ROLES`
exactly: the charts' ExternalSecrets read them by those names and fields.

Generated values are alphanumeric only (`NO_PUNCTUATION`): they are pasted unescaped into
connection URLs (`postgres://user:password@host`), PgBouncer's ini/userlist files, HTTP basic
auth and Redis AUTH, where `@ : / % " '` and friends would need escaping that no consumer
does reliably. Length makes up for the smaller alphabet (62 symbols: 32 characters > 190 bits).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from config import naming
from config.model import OrgConfig
from config.naming import SecretKeys
from constructs_lib.nag import acknowledge
from database.roles import LOGIN_ROLES, MASTER_USER

NO_PUNCTUATION = string.punctuation + " "
PASSWORD_LENGTH = 40
JWT_SECRET_LENGTH = 64
DASHBOARD_USER = "supabase"
# Realtime's documented sizes: Phoenix SECRET_KEY_BASE 64, DB_ENC_KEY exactly 16 (AES-128).
REALTIME_FIELDS = {"secret_key_base": 64, "db_enc_key": 16, "metrics_jwt_secret": 64}
META_CRYPTO_KEY_LENGTH = 48
REDIS_AUTH_TOKEN_LENGTH = 64
SES_SMTP_PORT = "587"

_NOT_ROTATED = (
    "{what}; Secrets Manager has no rotation function for it, so rotation is the documented "
    "manual procedure in docs/disaster-recovery.md (put a new value, then restart consumers)"
)


def generator(*, template: Mapping[str, str], key: str, length: int) -> secretsmanager.SecretStringGenerator:
    return secretsmanager.SecretStringGenerator(
        secret_string_template=json.dumps(dict(template), sort_keys=True),
        generate_string_key=key,
        password_length=length,
        exclude_characters=NO_PUNCTUATION,
    )


class SupabaseSecrets(Construct):
    """Creates the secrets; `secrets` maps each `SecretKeys` / role key to its secret."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        encryption_key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
        replica_key: kms.IKey | None,
    ) -> None:
        """`replica_key` (a key in the DR region) replicates every secret there, so that a
        failover finds the same credentials the restored database was backed up with."""
        super().__init__(scope, id_)
        env = cfg.environments[env_name]
        self._cfg, self._env_name = cfg, env_name
        self._key, self._removal_policy = encryption_key, removal_policy
        self._replicas = (
            [secretsmanager.ReplicaRegion(region=env.dr_region, encryption_key=replica_key)] if replica_key else None
        )
        self.secrets: dict[str, secretsmanager.ISecret] = {}

        self.master = rds.DatabaseSecret(
            self,
            "DbMaster",
            username=MASTER_USER,
            dbname="postgres",
            secret_name=self._name(SecretKeys.DB_MASTER),
            encryption_key=encryption_key,
            exclude_characters=NO_PUNCTUATION,
            replica_regions=self._replicas,
        )
        self.master.apply_removal_policy(removal_policy)
        self.secrets[SecretKeys.DB_MASTER] = self.master

        self.roles: dict[str, secretsmanager.Secret] = {}
        for role in LOGIN_ROLES:
            secret = self._generated(
                role.secret_key,
                f"Role-{role.name}",
                description=f"PostgreSQL login role {role.name} ({role.used_by}); the bootstrap job sets its password from here",
                spec=generator(template={"username": role.name}, key="password", length=PASSWORD_LENGTH),
                unrotated=f"password of database role {role.name}, set in PostgreSQL by the bootstrap job from this secret",
            )
            self.roles[role.name] = secret

        self.jwt_generator = generator(template={}, key="secret", length=JWT_SECRET_LENGTH)
        self.jwt = self._generated(
            SecretKeys.JWT,
            "Jwt",
            description="Signs every Supabase JWT; changing it requires re-minting the API keys (automatic) and restarting consumers",
            spec=self.jwt_generator,
            unrotated="JWT signing secret: rotating it ends every user session, so it is rotated deliberately by an operator",
        )
        self.api_keys = self._fixed(
            SecretKeys.API_KEYS,
            "ApiKeys",
            description="anon_key and service_role_key, minted from the JWT secret by the api-keys custom resource; do not edit",
            # Empty until the mint custom resource (created right after) writes the keys; the
            # template value never changes, so later deployments do not overwrite them.
            value={},
            unrotated="anon/service_role keys are re-minted by the mint function whenever the JWT secret changes",
        )
        self.meta = self._generated(
            SecretKeys.META,
            "Meta",
            description="postgres-meta / Studio CRYPTO_KEY",
            spec=generator(template={}, key="crypto_key", length=META_CRYPTO_KEY_LENGTH),
            unrotated="postgres-meta crypto key, which encrypts connection strings Studio stores",
        )
        self.dashboard = self._generated(
            SecretKeys.DASHBOARD,
            "Dashboard",
            description="Studio basic-auth credentials enforced by Kong",
            spec=generator(template={"username": DASHBOARD_USER}, key="password", length=PASSWORD_LENGTH),
            unrotated="Studio basic-auth password checked by Kong",
        )
        self.redis = self._generated(
            SecretKeys.REDIS,
            "Redis",
            description="AUTH token of the Valkey replication group",
            spec=generator(template={}, key="auth_token", length=REDIS_AUTH_TOKEN_LENGTH),
            unrotated="Valkey AUTH token, read by ElastiCache at deploy time; rotation uses ElastiCache's AuthTokenUpdateStrategy ROTATE",
        )
        self.realtime = self._realtime()
        self.smtp = self._fixed(
            SecretKeys.SMTP,
            "Smtp",
            description=(
                "SES SMTP credentials for GoTrue. Operator action: create SMTP credentials in the SES console "
                "(or use another SMTP provider) and put username/password here; host and port are prefilled."
            ),
            # Deliberately no IAM user in CDK: SES SMTP passwords derive from a long-lived
            # access key, which would then live in CloudFormation's hands.
            value={
                "username": "",
                "password": "",
                "host": f"email-smtp.{env.region}.amazonaws.com",
                "port": SES_SMTP_PORT,
            },
            unrotated="SES SMTP credentials are issued outside CDK by an operator, who rotates them in SES",
        )

    def _name(self, key: str) -> str:
        return naming.secret_name(self._cfg, self._env_name, key)

    def _register(self, key: str, secret: secretsmanager.Secret, unrotated: str) -> secretsmanager.Secret:
        secret.apply_removal_policy(self._removal_policy)
        acknowledge(
            secret.node.default_child,
            ("AwsSolutions::AwsSolutions-SMG4", _NOT_ROTATED.format(what=unrotated)),
            ("NIST.800.53.R5::NIST.800.53.R5-SecretsManagerRotationEnabled", _NOT_ROTATED.format(what=unrotated)),
        )
        self.secrets[key] = secret
        return secret

    def _generated(
        self, key: str, id_: str, *, description: str, spec: secretsmanager.SecretStringGenerator, unrotated: str
    ) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            id_,
            secret_name=self._name(key),
            description=description,
            encryption_key=self._key,
            generate_secret_string=spec,
            replica_regions=self._replicas,
        )
        return self._register(key, secret, unrotated)

    def _fixed(
        self, key: str, id_: str, *, description: str, value: Mapping[str, str], unrotated: str
    ) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            id_,
            secret_name=self._name(key),
            description=description,
            encryption_key=self._key,
            # Not secret material: empty fields for the operator or the mint function to fill.
            secret_string_value=cdk.SecretValue.unsafe_plain_text(json.dumps(dict(value), sort_keys=True)),
            replica_regions=self._replicas,
        )
        return self._register(key, secret, unrotated)

    def _realtime(self) -> secretsmanager.Secret:
        # A SecretStringGenerator fills one field. Each Realtime field is generated in its own
        # part secret and the realtime secret assembles them with dynamic references, which
        # CloudFormation resolves at deploy time: no value ever appears in the template.
        fields: dict[str, cdk.SecretValue] = {}
        for field, length in REALTIME_FIELDS.items():
            part = self._generated(
                f"{SecretKeys.REALTIME}/parts/{field}",
                f"RealtimePart-{field}",
                description=f"Generated Realtime {field}; assembled into {self._name(SecretKeys.REALTIME)}",
                spec=generator(template={}, key="value", length=length),
                unrotated=f"source of Realtime's {field}, copied into the realtime secret at deploy time",
            )
            self.secrets.pop(f"{SecretKeys.REALTIME}/parts/{field}")
            fields[field] = cdk.SecretValue.secrets_manager(part.secret_arn, json_field="value")
        secret = secretsmanager.Secret(
            self,
            "Realtime",
            secret_name=self._name(SecretKeys.REALTIME),
            encryption_key=self._key,
            description="Realtime SECRET_KEY_BASE, DB_ENC_KEY and METRICS_JWT_SECRET",
            secret_object_value=fields,
            replica_regions=self._replicas,
        )
        return self._register(
            SecretKeys.REALTIME,
            secret,
            "Realtime keys; DB_ENC_KEY encrypts tenant settings stored in the database, so it must not change under it",
        )
