"""AWS WAF web ACL for the Supabase API: AWS managed rule groups, a per-IP rate limit, metrics
and logging to an encrypted CloudWatch log group.

The same construct serves both scopes: CLOUDFRONT (must live in us-east-1) in front of the
distribution and REGIONAL on the load balancer controller's ALB.
"""

from __future__ import annotations

from enum import StrEnum

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from constructs_lib.log_keys import admit_cloudwatch_logs

_Acl = wafv2.CfnWebACL

# Storage uploads (standard and TUS resumable) carry bodies far above the Core rule set's
# 8 KB SizeRestrictions_BODY limit; every other Supabase route keeps that limit.
UPLOAD_PATH_PREFIX = "/storage/v1/"
SIZE_RESTRICTIONS_BODY_LABEL = "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
# Supabase sends its anon/service_role JWTs in `apikey` and `authorization`: a service_role
# key in a log line bypasses row level security for whoever reads the logs.
REDACTED_HEADERS = ("authorization", "apikey", "cookie")
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
)


class WafScope(StrEnum):
    REGIONAL = "REGIONAL"
    CLOUDFRONT = "CLOUDFRONT"


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return _Acl.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True,
        metric_name=metric_name,
        sampled_requests_enabled=True,
    )


def _path_starts_with(prefix: str) -> wafv2.CfnWebACL.StatementProperty:
    return _Acl.StatementProperty(
        byte_match_statement=_Acl.ByteMatchStatementProperty(
            field_to_match=_Acl.FieldToMatchProperty(uri_path={}),
            positional_constraint="STARTS_WITH",
            search_string=prefix,
            text_transformations=[_Acl.TextTransformationProperty(priority=0, type="NONE")],
        )
    )


def _host_is(host: str) -> wafv2.CfnWebACL.StatementProperty:
    return _Acl.StatementProperty(
        byte_match_statement=_Acl.ByteMatchStatementProperty(
            field_to_match=_Acl.FieldToMatchProperty(single_header={"Name": "host"}),
            positional_constraint="EXACTLY",
            search_string=host,
            text_transformations=[_Acl.TextTransformationProperty(priority=0, type="LOWERCASE")],
        )
    )


def _not(statement: wafv2.CfnWebACL.StatementProperty) -> wafv2.CfnWebACL.StatementProperty:
    return _Acl.StatementProperty(not_statement=_Acl.NotStatementProperty(statement=statement))


class SupabaseWebAcl(Construct):
    """Web ACL named `name` with its logging; `sql_console_host` is exempt from the SQLi group.

    `sql_console_host` is Studio's host: its SQL editor posts SQL in request bodies by design
    (behind Kong's basic auth), which the SQLi rules would block on every query.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        waf_scope: WafScope,
        rate_limit_per_5min: int,
        log_retention: logs.RetentionDays,
        production: bool,
        sql_console_host: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        stack = cdk.Stack.of(self)
        rules = [
            _Acl.RuleProperty(
                name="RateLimitPerIp",
                priority=0,
                action=_Acl.RuleActionProperty(block={}),
                statement=_Acl.StatementProperty(
                    rate_based_statement=_Acl.RateBasedStatementProperty(
                        aggregate_key_type="IP",
                        limit=rate_limit_per_5min,
                        evaluation_window_sec=300,
                    )
                ),
                visibility_config=_visibility(f"{name}-rate-limit"),
            ),
            self._managed("AWSManagedRulesAmazonIpReputationList", 10, name),
            self._managed(
                "AWSManagedRulesCommonRuleSet",
                20,
                name,
                # Counted (not blocked) so that it only labels the request; the next rule
                # blocks oversized bodies everywhere except under the upload path.
                count=("SizeRestrictions_BODY",),
            ),
            _Acl.RuleProperty(
                name="OversizedBodyOutsideStorage",
                priority=30,
                action=_Acl.RuleActionProperty(block={}),
                statement=_Acl.StatementProperty(
                    and_statement=_Acl.AndStatementProperty(
                        statements=[
                            _Acl.StatementProperty(
                                label_match_statement=_Acl.LabelMatchStatementProperty(
                                    key=SIZE_RESTRICTIONS_BODY_LABEL,
                                    scope="LABEL",
                                )
                            ),
                            _not(_path_starts_with(UPLOAD_PATH_PREFIX)),
                        ]
                    )
                ),
                visibility_config=_visibility(f"{name}-oversized-body"),
            ),
            self._managed("AWSManagedRulesKnownBadInputsRuleSet", 40, name),
            self._managed(
                "AWSManagedRulesSQLiRuleSet",
                50,
                name,
                scope_down=_not(_host_is(sql_console_host)) if sql_console_host else None,
            ),
        ]
        self.web_acl = _Acl(
            self,
            "WebAcl",
            name=name,
            scope=waf_scope.value,
            default_action=_Acl.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=_visibility(name),
        )
        self.web_acl_arn: str = self.web_acl.attr_arn

        # WAF only delivers to log groups whose name starts with aws-waf-logs-.
        log_group_name = f"aws-waf-logs-{name}"
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.log_key = kms.Key(
            self,
            "LogKey",
            description=f"WAF logs of {name}",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        admit_cloudwatch_logs(self.log_key, log_group_arn=log_group_arn)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            retention=log_retention,
            encryption_key=self.log_key,
            removal_policy=cdk.RemovalPolicy.RETAIN if production else cdk.RemovalPolicy.DESTROY,
        )
        self.logging_configuration = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group_arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
        self.logging_configuration.node.add_dependency(self.log_group)

    @staticmethod
    def _managed(
        group: str,
        priority: int,
        acl_name: str,
        *,
        count: tuple[str, ...] = (),
        scope_down: wafv2.CfnWebACL.StatementProperty | None = None,
    ) -> wafv2.CfnWebACL.RuleProperty:
        return _Acl.RuleProperty(
            name=group,
            priority=priority,
            override_action=_Acl.OverrideActionProperty(none={}),
            statement=_Acl.StatementProperty(
                managed_rule_group_statement=_Acl.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS",
                    name=group,
                    rule_action_overrides=[
                        _Acl.RuleActionOverrideProperty(name=rule, action_to_use=_Acl.RuleActionProperty(count={}))
                        for rule in count
                    ]
                    or None,
                    scope_down_statement=scope_down,
                )
            ),
            visibility_config=_visibility(f"{acl_name}-{group}"),
        )
