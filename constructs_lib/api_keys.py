"""Mints Supabase's API keys and ES256 signing keys into the api-keys secret (ops/mint_api_keys).

A custom resource mints at deploy time; an EventBridge rule re-mints when someone puts a new
JWT (or realtime) secret value, and a weekly schedule renews keys before they expire. The function is
idempotent (it writes only when the stored keys no longer verify), so extra triggers are free.
"""

from __future__ import annotations

import hashlib
import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from constructs_lib.checkov import FRAMEWORK_FUNCTION_SKIPS, skip
from constructs_lib.lambda_deps import MINT_API_KEYS, dependencies_layer, function_code
from constructs_lib.nag import acknowledge, acknowledge_unreserved_concurrency
from constructs_lib.retention import retention

RESOURCE_TYPE = "Custom::SupabaseApiKeys"
RENEW_SCHEDULE = events.Schedule.rate(cdk.Duration.days(7))
_VPC_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
_BASIC_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"

_NO_DLQ = (
    "invoked synchronously by the custom resource provider (a failed mint fails the deployment) and by EventBridge "
    "rules that retry and whose events carry nothing to replay: the next trigger re-checks the keys anyway"
)


def secret_generation(secret: secretsmanager.Secret) -> str:
    """Fingerprint of how the secret's value was generated.

    Changing the generator (length, template, field) makes CloudFormation generate a new
    value under the same ARN; with the fingerprint in the custom resource's properties that
    change also updates the custom resource, which then re-mints.
    """
    cfn = secret.node.default_child
    spec = cdk.Stack.of(secret).resolve(cfn.generate_secret_string)
    return hashlib.sha256(
        json.dumps({"path": secret.node.path, "generator": spec}, sort_keys=True).encode()
    ).hexdigest()


class ApiKeyMinter(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        jwt_secret: secretsmanager.Secret,
        jwt_secret_name: str,
        api_keys_secret: secretsmanager.ISecret,
        realtime_secret: secretsmanager.ISecret,
        realtime_secret_name: str,
        encryption_key: kms.IKey,
        issuer: str,
        expiry_days: int,
        legacy_api_keys: bool,
        vpc: ec2.IVpc,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="API key minting: Secrets Manager and KMS through the VPC endpoints only",
        )
        self.security_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "VPC interface endpoints"
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=encryption_key,
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description="Read the JWT and realtime secrets, write the API keys secret, nothing else",
            statements=[
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[jwt_secret.secret_arn, realtime_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                    resources=[api_keys_secret.secret_arn],
                ),
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[encryption_key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
            ],
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            managed_policies=[self.policy],
        )
        # The signing and verifying are PyJWT's and cryptography's, in a layer of PyPI wheels;
        # the function's own asset stays the source folder, so editing it needs no rebuild.
        self.dependencies = dependencies_layer(
            self,
            "Dependencies",
            dependencies=MINT_API_KEYS,
            description="PyJWT and cryptography for the API key minter",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="Mints the Supabase API keys and ES256 signing keys; rotates the signing keys",
            runtime=MINT_API_KEYS.runtime,
            architecture=MINT_API_KEYS.architecture,
            handler="handler.on_event",
            code=function_code(MINT_API_KEYS),
            layers=[self.dependencies],
            role=self.role,
            timeout=cdk.Duration.minutes(1),
            memory_size=256,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            log_group=self.log_group,
            environment={
                "JWT_SECRET_ARN": jwt_secret.secret_arn,
                "API_KEYS_SECRET_ARN": api_keys_secret.secret_arn,
                "REALTIME_SECRET_ARN": realtime_secret.secret_arn,
                "JWT_ISSUER": issuer,
                "API_KEY_EXPIRY_DAYS": str(expiry_days),
                "LEGACY_API_KEYS": str(legacy_api_keys).lower(),
            },
            environment_encryption=encryption_key,
        )
        acknowledge(
            self.role,
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::{_VPC_POLICY}]",
                "AWS's policy for the ENIs a VPC function needs; the function runs in the VPC to reach Secrets Manager privately",
            ),
        )
        acknowledge(
            self.function.node.default_child,
            ("NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ", _NO_DLQ),
        )
        acknowledge_unreserved_concurrency(
            self.function.node.default_child,
            why_safe="two overlapping mints both derive from the current JWT secret, and a stale write is re-minted "
            "by the next event's idempotent check",
        )
        skip(self.function.node.default_child, ("CKV_AWS_116", _NO_DLQ))

        # The provider framework function stays outside the VPC: it calls only the Lambda API
        # (to invoke the mint function) and CloudFormation's pre-signed S3 response URL, neither
        # of which the VPC's endpoints or this security group serve, and it never sees a secret.
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function,
            log_group=logs.LogGroup(
                self,
                "ProviderLogs",
                encryption_key=encryption_key,
                retention=retention(log_retention_days),
                removal_policy=cdk.RemovalPolicy.DESTROY,
            ),
            provider_function_env_encryption=encryption_key,
        )
        self._acknowledge_provider()

        self.resource = cdk.CustomResource(
            self,
            "Keys",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={
                "JwtSecretArn": jwt_secret.secret_arn,
                "ApiKeysSecretArn": api_keys_secret.secret_arn,
                # Adds `metrics_token` (signed with Realtime's metrics_jwt_secret) for Prometheus.
                "RealtimeSecretArn": realtime_secret.secret_arn,
                "Issuer": issuer,
                "ExpiryDays": str(expiry_days),
                # Off: the legacy HS256 keys and the JWT secret leave the secret and the JWKS.
                "LegacyApiKeys": str(legacy_api_keys).lower(),
                "JwtSecretGeneration": secret_generation(jwt_secret),
            },
        )
        # Consumers can put this in a pod annotation to restart when the keys change.
        self.version_id = self.resource.get_att_string("VersionId")

        self.on_jwt_change = events.Rule(
            self,
            "OnJwtSecretChange",
            description="Re-mint the API keys (or the metrics token) when the JWT or realtime secret gets a new value",
            event_pattern=events.EventPattern(
                source=["aws.secretsmanager"],
                detail_type=["AWS API Call via CloudTrail"],
                detail={
                    "eventSource": ["secretsmanager.amazonaws.com"],
                    "eventName": ["PutSecretValue", "UpdateSecret", "RotateSecret"],
                    # CloudTrail records the id as the caller gave it: ARN or name.
                    "requestParameters": {
                        "secretId": [
                            jwt_secret.secret_arn,
                            jwt_secret_name,
                            realtime_secret.secret_arn,
                            realtime_secret_name,
                        ]
                    },
                },
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=4)],
        )
        self.renew = events.Rule(
            self,
            "Renew",
            description="Renew the API keys before they expire",
            schedule=RENEW_SCHEDULE,
            targets=[targets.LambdaFunction(self.function, retry_attempts=4)],
        )

    def _acknowledge_provider(self) -> None:
        framework = self.provider.node.find_child("framework-onEvent")
        stack = cdk.Stack.of(self)
        function_id = stack.resolve(stack.get_logical_id(self.function.node.default_child))
        acknowledge(
            framework.role,
            (
                f"AwsSolutions::AwsSolutions-IAM4[Policy::{_BASIC_POLICY}]",
                "role of the CDK custom resource provider framework function, which CDK creates with this AWS policy",
            ),
        )
        acknowledge(
            framework.role.node.find_child("DefaultPolicy").node.default_child,
            (
                f"AwsSolutions::AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
                "CDK's provider framework may invoke any version of the one mint function: the wildcard is the version suffix",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
                "CDK-generated policy of the provider framework function: lambda:InvokeFunction on the mint function only",
            ),
        )
        cfn = framework.node.default_child
        # Explicit, not left to composition's FrameworkFunctionSkips aspect: an aspect added to
        # the App does not reach stacks inside a Stage.
        skip(cfn, *FRAMEWORK_FUNCTION_SKIPS)
        acknowledge(
            cfn,
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaDLQ",
                "CDK's provider framework function is invoked synchronously by CloudFormation, which reports failures itself",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
                "CDK's provider framework function runs only during deployments of this stack, one event at a time",
            ),
            (
                "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
                "calls only the Lambda API and CloudFormation's pre-signed S3 response URL and handles no secret (the mint "
                "function returns a version id only); in the VPC it could reach neither",
            ),
        )
