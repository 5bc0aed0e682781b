"""Object storage and the edge of one environment, in its primary region.

- `bucket`: Supabase Storage's S3 backend, replicated to the DR stack's replica bucket.
- `velero_bucket`: Velero's backups, replicated to the DR stack's Velero replica bucket.
- `certificate_arn` / `regional_web_acl_arn`: for the ALB that the load balancer controller
  creates for api.<domain> and studio.<domain>.
- `distribution` (features.cloudfront): cdn.<domain> in front of the same API. Its API origin
  is api.<domain>, i.e. the ALB; CloudFront checks the ALB's certificate against that name.
  Public storage objects are cached at the edge; everything authenticated passes through
  uncached. Objects under static/ in the bucket (e.g. GoTrue mail templates, app assets) are
  served straight from S3 through Origin Access Control; Supabase's own object URLs cannot
  be, because Storage keys objects as <tenant>/<bucket>/<name>/<version>, not by URL path.

No secret origin header: api.<domain> is a public endpoint in its own right (Studio,
server-side clients and Realtime reach the ALB directly), protected there by the regional
web ACL with the same rules, so a header would not narrow who can reach the origin and would
only put a shared secret into the template.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from config import naming
from config.model import OrgConfig
from constructs_lib.buckets import AccessLogBucket, ArchiveTiering, HardenedBucket, ReplicationTarget
from constructs_lib.nag import acknowledge
from constructs_lib.retention import retention
from constructs_lib.waf import SupabaseWebAcl, WafScope
from stacks.dr_stack import STORAGE_ARCHIVE_PREFIX, DrStack
from stacks.edge_stack import WAF_LOG_RETENTION_DAYS, EdgeStack

ACCESS_LOG_RETENTION_DAYS = 365
CDN_DISTRIBUTION_OUTPUT = "CloudFrontDistributionId"
STATIC_PREFIX = "static/"
PUBLIC_OBJECTS_PATH = "/storage/v1/object/public/*"
# Paths whose responses depend on the caller's JWT: never cached, every viewer header but
# Host forwarded (Host stays api.<domain>, which the ALB's ingress rule matches).
UNCACHED_API_PATHS = ("/auth/v1/*", "/realtime/v1/*")
# PostgREST reads: cached only when the response says so (Cache-Control max-age, which a
# database function sets through response.headers); the TTL otherwise is 0. The key holds
# everything that identifies the caller (Authorization, apikey) or changes the answer (the
# query string, Accept and Accept-Profile, Prefer, Range), and Origin for CORS, so a cached
# answer is only ever served to the same credentials asking the same question.
API_READS_PATH = "/rest/v1/*"
API_READS_KEY_HEADERS = ("Authorization", "apikey", "Accept", "Accept-Profile", "Prefer", "Range", "Origin")


class StorageStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cfg: OrgConfig,
        env_name: str,
        dr: DrStack,
        edge: EdgeStack | None,
        **kwargs,
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        env = cfg.environments[env_name]
        self.env_name = env_name
        self.api_host = naming.api_host(env)
        self.studio_host = naming.studio_host(env)
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self,
            "Zone",
            hosted_zone_id=env.hosted_zone_id,
            zone_name=env.domain_name,
        )
        cloudfront_enabled = env.features.cloudfront and edge is not None

        self.access_logs = AccessLogBucket(
            self,
            "AccessLogBucket",
            bucket_name=naming.access_log_bucket(cfg, env_name, env.region),
            production=env.production,
            retention_days=ACCESS_LOG_RETENTION_DAYS,
            allow_acls=cloudfront_enabled,
        )

        self.bucket_key = self._data_key(
            "StorageKey",
            f"alias/{cfg.project}-{env_name}-storage",
            f"{cfg.project} {env_name}: Supabase Storage objects",
        )
        self.storage = HardenedBucket(
            self,
            "StorageBucket",
            bucket_name=naming.storage_bucket(cfg, env_name),
            encryption_key=self.bucket_key,
            access_logs=self.access_logs.bucket,
            production=env.production,
            noncurrent_version_expiry_days=env.storage.noncurrent_version_expiry_days,
            tiering=ArchiveTiering(
                prefix=STORAGE_ARCHIVE_PREFIX,
                archive_after_days=env.storage.archive_after_days,
                deep_archive_after_days=env.storage.deep_archive_after_days,
            ),
            replication=ReplicationTarget(
                bucket_name=naming.replica_bucket(cfg, env_name),
                region=env.dr_region,
                account=env.account.id,
                key_arn=dr.key.key_arn,
            ),
        )
        self.bucket = self.storage.bucket

        self.velero_key = self._data_key(
            "VeleroKey", f"alias/{cfg.project}-{env_name}-velero", f"{cfg.project} {env_name}: Velero cluster backups"
        )
        self.velero = HardenedBucket(
            self,
            "VeleroBucket",
            bucket_name=naming.velero_bucket(cfg, env_name),
            encryption_key=self.velero_key,
            access_logs=self.access_logs.bucket,
            production=env.production,
            noncurrent_version_expiry_days=env.storage.noncurrent_version_expiry_days,
            replication=ReplicationTarget(
                bucket_name=naming.velero_replica_bucket(cfg, env_name),
                region=env.dr_region,
                account=env.account.id,
                key_arn=dr.key.key_arn,
            ),
        )
        self.velero_bucket = self.velero.bucket

        self.certificate = acm.Certificate(
            self,
            "ApiCertificate",
            domain_name=self.api_host,
            subject_alternative_names=[self.studio_host],
            validation=acm.CertificateValidation.from_dns(zone),
        )
        self.certificate_arn: str = self.certificate.certificate_arn

        self.regional_waf = SupabaseWebAcl(
            self,
            "RegionalWebAcl",
            name=f"{cfg.project}-{env_name}-regional",
            waf_scope=WafScope.REGIONAL,
            rate_limit_per_5min=env.storage.waf_rate_limit_per_5min,
            log_retention=retention(WAF_LOG_RETENTION_DAYS),
            production=env.production,
            sql_console_host=self.studio_host,
        )
        self.regional_web_acl = self.regional_waf.web_acl
        self.regional_web_acl_arn: str = self.regional_waf.web_acl_arn

        self.distribution: cloudfront.Distribution | None = None
        self.distribution_domain_name: str | None = None
        self.cdn_host: str | None = None
        if cloudfront_enabled and edge is not None:
            self.distribution = self._distribution(cfg, env_name, edge, zone)
            self.distribution_domain_name = self.distribution.distribution_domain_name

        self.bucket_name: str = self.bucket.bucket_name
        self.bucket_region: str = self.region
        self.velero_bucket_name: str = self.velero_bucket.bucket_name
        cdk.CfnOutput(self, "StorageBucketName", value=self.bucket_name)
        cdk.CfnOutput(self, "StorageBucketRegion", value=self.bucket_region)
        cdk.CfnOutput(self, "VeleroBucketName", value=self.velero_bucket_name)
        cdk.CfnOutput(self, "RegionalWebAclArn", value=self.regional_web_acl_arn)
        cdk.CfnOutput(self, "ApiCertificateArn", value=self.certificate_arn)
        if self.distribution is not None:
            cdk.CfnOutput(self, "CloudFrontDomainName", value=self.distribution.distribution_domain_name)
            # `make cdn-invalidate` reads it.
            cdk.CfnOutput(self, CDN_DISTRIBUTION_OUTPUT, value=self.distribution.distribution_id)

    def _data_key(self, id_: str, alias: str, description: str) -> kms.Key:
        key = kms.Key(
            self,
            id_,
            alias=alias,
            description=description,
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        key.node.default_child.override_logical_id(id_)
        return key

    def _distribution(
        self, cfg: OrgConfig, env_name: str, edge: EdgeStack, zone: route53.IHostedZone
    ) -> cloudfront.Distribution:
        env = cfg.environments[env_name]
        self.cdn_host = edge.cdn_host
        api_origin = origins.HttpOrigin(
            self.api_host,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        headers = cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS
        uncached = cloudfront.BehaviorOptions(
            origin=api_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy=headers,
        )
        public_objects_policy = cloudfront.CachePolicy(
            self,
            "PublicObjectsCachePolicy",
            cache_policy_name=f"{cfg.project}-{env_name}-public-objects",
            comment="Supabase public storage objects: Storage's Cache-Control decides, the query string is part of the key",
            default_ttl=cdk.Duration.hours(1),
            min_ttl=cdk.Duration.seconds(0),
            max_ttl=cdk.Duration.days(7),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.all(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        api_reads_policy = cloudfront.CachePolicy(
            self,
            "ApiReadsCachePolicy",
            cache_policy_name=f"{cfg.project}-{env_name}-api-reads",
            comment="PostgREST GETs: cached only on the origin's Cache-Control, keyed by the caller's credentials",
            default_ttl=cdk.Duration.seconds(0),
            min_ttl=cdk.Duration.seconds(0),
            max_ttl=cdk.Duration.days(1),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.all(),
            header_behavior=cloudfront.CacheHeaderBehavior.allow_list(*API_READS_KEY_HEADERS),
            cookie_behavior=cloudfront.CacheCookieBehavior.all(),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        api_reads = cloudfront.BehaviorOptions(
            origin=api_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
            cache_policy=api_reads_policy,
            # Writes need the rest of the viewer's headers (Content-Type, Content-Profile); every
            # header that shapes a read's answer is in the key above.
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy=headers,
        )
        # OAC on a by-name view of the bucket: the origin then leaves the bucket and key
        # policies alone, and the statements below grant the static/ prefix only, not the
        # tenant data next to it.
        oac = cloudfront.S3OriginAccessControl(
            self,
            "StaticAssetsOac",
            description="CloudFront reads static/ of the storage bucket",
        )
        static_origin = origins.S3BucketOrigin.with_origin_access_control(
            s3.Bucket.from_bucket_attributes(
                self, "StorageBucketByName", bucket_name=naming.storage_bucket(cfg, env_name), region=self.region
            ),
            origin_access_control=oac,
            origin_access_levels=[cloudfront.AccessLevel.READ],
        )
        distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"{cfg.project} {env_name}: Supabase API and public objects",
            domain_names=[self.cdn_host],
            certificate=acm.Certificate.from_certificate_arn(self, "CdnCertificate", edge.certificate_arn),
            web_acl_id=edge.web_acl_arn,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL
            if env.production
            else cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.access_logs.bucket,
            log_file_prefix="cloudfront/",
            default_behavior=uncached,
            additional_behaviors={
                PUBLIC_OBJECTS_PATH: cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                    cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD_OPTIONS,
                    cache_policy=public_objects_policy,
                    response_headers_policy=headers,
                ),
                f"/{STATIC_PREFIX}*": cloudfront.BehaviorOptions(
                    origin=static_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                    response_headers_policy=headers,
                ),
                API_READS_PATH: api_reads,
                **{path: uncached for path in UNCACHED_API_PATHS},
            },
        )
        distribution_arn = self.format_arn(
            service="cloudfront",
            region="",
            resource="distribution",
            resource_name=distribution.distribution_id,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsStaticPrefix",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{STATIC_PREFIX}*")],
                conditions={"StringEquals": {"AWS:SourceArn": distribution_arn}},
            )
        )
        self.bucket_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontDecryptsStaticObjects",
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"AWS:SourceArn": distribution_arn}},
            )
        )
        cdk.Annotations.of(distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "the storage bucket policy grants this distribution static/* explicitly (statement CloudFrontReadsStaticPrefix)",
        )
        cdk.Annotations.of(distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedKeyPolicyOac",
            "the storage key policy grants this distribution kms:Decrypt explicitly (statement CloudFrontDecryptsStaticObjects)",
        )
        acknowledge(
            distribution.node.default_child,
            (
                "AwsSolutions-CFR1",
                "Supabase's API serves the app's users wherever they are; country blocking is a product decision, made in the web ACL if ever",
            ),
        )
        for record_id, record_type in (("CdnAliasA", route53.ARecord), ("CdnAliasAaaa", route53.AaaaRecord)):
            record_type(
                self,
                record_id,
                zone=zone,
                record_name=self.cdn_host,
                target=route53.RecordTarget.from_alias(targets.CloudFrontTarget(distribution)),
            )
        return distribution
