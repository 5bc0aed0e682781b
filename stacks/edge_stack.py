"""What CloudFront requires in us-east-1: the viewer certificate and the CLOUDFRONT-scope web ACL.

A small stack of its own so that the storage stack can stay in the environment's primary
region; the storage stack reads both ARNs through cross-region references.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from config.model import OrgConfig
from constructs_lib.retention import retention
from constructs_lib.waf import SupabaseWebAcl, WafScope

# CloudFront accepts viewer certificates and web ACLs from this region only.
EDGE_REGION = "us-east-1"
# WAF logs hold client IPs and paths: a year covers incident investigations. Config has no
# field for it yet (wanted: storage.waf_log_retention_days).
WAF_LOG_RETENTION_DAYS = 365


def cdn_host(domain_name: str) -> str:
    return f"cdn.{domain_name}"


class EdgeStack(cdk.Stack):
    def __init__(self, scope: Construct, id_: str, *, cfg: OrgConfig, env_name: str, **kwargs) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.cdn_host = cdn_host(env.domain_name)
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "Zone",
            hosted_zone_id=env.hosted_zone_id,
            zone_name=env.domain_name,
        )
        self.certificate = acm.Certificate(
            self,
            "CdnCertificate",
            domain_name=self.cdn_host,
            validation=acm.CertificateValidation.from_dns(zone),
        )
        self.certificate_arn: str = self.certificate.certificate_arn
        self.web_acl = SupabaseWebAcl(
            self,
            "CloudFrontWebAcl",
            name=f"{cfg.project}-{env_name}-cloudfront",
            waf_scope=WafScope.CLOUDFRONT,
            rate_limit_per_5min=env.storage.waf_rate_limit_per_5min,
            log_retention=retention(WAF_LOG_RETENTION_DAYS),
            production=env.production,
        )
        self.web_acl_arn: str = self.web_acl.web_acl_arn
        cdk.CfnOutput(self, "CdnCertificateArn", value=self.certificate_arn)
        cdk.CfnOutput(self, "CloudFrontWebAclArn", value=self.web_acl_arn)
