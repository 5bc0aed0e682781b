"""Edge: the us-east-1 certificate and CLOUDFRONT web ACL, the distribution, both web ACLs' rules."""

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from config import naming
from constructs_lib.waf import MANAGED_RULE_GROUPS, REDACTED_HEADERS, SIZE_RESTRICTIONS_BODY_LABEL, UPLOAD_PATH_PREFIX
from stacks.dr_stack import DrStack
from stacks.storage_stack import StorageStack
from tests.conftest import ENVIRONMENTS

ENVS = ENVIRONMENTS
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def distribution_config(template, env) -> dict:
    [dist] = template(env, "storage").find_resources("AWS::CloudFront::Distribution").values()
    return dist["Properties"]["DistributionConfig"]


def behaviors(template, env) -> dict[str, dict]:
    config = distribution_config(template, env)
    found = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    found["default"] = config["DefaultCacheBehavior"]
    return found


def origin_of(config: dict, behavior: dict) -> dict:
    return next(o for o in config["Origins"] if o["Id"] == behavior["TargetOriginId"])


def web_acl(template, env, unit) -> dict:
    [acl] = template(env, unit).find_resources("AWS::WAFv2::WebACL").values()
    return acl["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_edge_stack_is_in_us_east_1(assembly, env):
    edge = assembly.stack(f"{env}/edge")
    assert edge.region == "us-east-1"
    assert edge.stack_name == f"{env}-edge"


@pytest.mark.parametrize("env", ENVS)
def test_cdn_certificate_is_dns_validated_in_the_configured_zone(template, cfg, env):
    e = cfg.environments[env]
    template(env, "edge").has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": f"cdn.{e.domain_name}",
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [{"DomainName": f"cdn.{e.domain_name}", "HostedZoneId": e.hosted_zone_id}],
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_distribution_tls_http3_aliases_waf_and_logging(template, cfg, env):
    config = distribution_config(template, env)
    assert config["Aliases"] == [f"cdn.{cfg.environments[env].domain_name}"]
    certificate = config["ViewerCertificate"]
    assert certificate["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert certificate["SslSupportMethod"] == "sni-only"
    assert "CdnCertificate" in str(certificate["AcmCertificateArn"])
    assert config["HttpVersion"] == "http2and3"
    assert "CloudFrontWebAcl" in str(config["WebACLId"])
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": ["AccessLogBucket", "RegionalDomainName"]},
        "Prefix": "cloudfront/",
    }


def test_cloudfront_log_bucket_accepts_acl_delivery(template):
    props = template("staging", "storage").to_json()["Resources"]["AccessLogBucket"]["Properties"]
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}


@pytest.mark.parametrize("env", ENVS)
def test_authenticated_paths_are_never_cached(template, env):
    found = behaviors(template, env)
    for path in ("/auth/v1/*", "/realtime/v1/*", "default"):
        behavior = found[path]
        assert behavior["CachePolicyId"] == CACHING_DISABLED, path
        assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER, path
        assert behavior["ViewerProtocolPolicy"] == "https-only", path
        assert set(behavior["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}, path


# What can identify a caller to the origin. CloudFront forwards a header or cookie to the origin
# when the cache policy keys on it or the origin request policy passes it on.
IDENTITY_HEADERS = {"authorization", "apikey"}
# AWS managed cache policies the distribution uses and what they key on
# (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html).
MANAGED_CACHE_POLICIES = {
    CACHING_OPTIMIZED: {"headers": set(), "cookies": "none", "query": "none", "default_ttl": 86400},
}


def cache_key(template, env, behavior) -> dict | None:
    """What the behavior's cache policy keys on; None when it does not cache."""
    policy = behavior["CachePolicyId"]
    if policy == CACHING_DISABLED:
        return None
    if isinstance(policy, str):
        return MANAGED_CACHE_POLICIES[policy]
    config = template(env, "storage").to_json()["Resources"][policy["Ref"]]["Properties"]["CachePolicyConfig"]
    params = config["ParametersInCacheKeyAndForwardedToOrigin"]
    return {
        "headers": {h.lower() for h in params["HeadersConfig"].get("Headers", [])},
        "cookies": params["CookiesConfig"]["CookieBehavior"],
        "query": params["QueryStringsConfig"]["QueryStringBehavior"],
        "default_ttl": config["DefaultTTL"],
    }


def personalisation_leaks(template, env, found: dict[str, dict]) -> list[str]:
    """A cached behavior must either keep every credential from the origin (so the answer cannot
    depend on the caller) or key on every credential (so it is only served back to them)."""
    leaks = []
    for path, behavior in found.items():
        key = cache_key(template, env, behavior)
        if key is None:
            continue
        forwards_all_viewer = behavior.get("OriginRequestPolicyId") == ALL_VIEWER_EXCEPT_HOST_HEADER
        forwards_identity = forwards_all_viewer or bool(key["headers"] & IDENTITY_HEADERS) or key["cookies"] != "none"
        if not forwards_identity:
            continue
        if not key["headers"] >= IDENTITY_HEADERS:
            leaks.append(
                f"{path}: credentials reach the origin but {sorted(IDENTITY_HEADERS - key['headers'])} are not in the key"
            )
        if key["cookies"] != "all":
            leaks.append(f"{path}: cookies reach the origin but are not all in the key")
        if key["query"] != "all":
            leaks.append(f"{path}: the query string (?apikey=) is not all in the key")
    return leaks


@pytest.mark.parametrize("env", ENVS)
def test_nothing_personalised_is_shared_from_the_cdn_cache(template, env):
    found = behaviors(template, env)
    assert sum(cache_key(template, env, b) is not None for b in found.values()) == 3
    assert personalisation_leaks(template, env, found) == []


@pytest.mark.parametrize("env", ENVS)
def test_api_reads_are_cached_only_when_postgrest_says_so(template, env):
    reads = behaviors(template, env)["/rest/v1/*"]
    key = cache_key(template, env, reads)
    assert key is not None
    assert key["default_ttl"] == 0
    assert {"accept", "accept-profile", "prefer", "range", "origin"} <= key["headers"]
    assert set(reads["CachedMethods"]) == {"GET", "HEAD"}
    assert set(reads["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert reads["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER


@pytest.mark.parametrize("env", ENVS)
def test_public_objects_reach_the_origin_without_credentials(template, env):
    public = behaviors(template, env)["/storage/v1/object/public/*"]
    key = cache_key(template, env, public)
    assert key == {"headers": set(), "cookies": "none", "query": "all", "default_ttl": 3600}
    assert "OriginRequestPolicyId" not in public


def test_a_cached_behavior_forwarding_credentials_outside_its_key_is_refused(template):
    """The rule above, shown failing: public objects with every viewer header forwarded."""
    public = dict(behaviors(template, "prod")["/storage/v1/object/public/*"])
    public["OriginRequestPolicyId"] = ALL_VIEWER_EXCEPT_HOST_HEADER
    leaks = personalisation_leaks(template, "prod", {"public": public})
    assert leaks == [
        "public: credentials reach the origin but ['apikey', 'authorization'] are not in the key",
        "public: cookies reach the origin but are not all in the key",
    ]


@pytest.mark.parametrize("env", ENVS)
def test_distribution_id_is_an_output_for_invalidations(template, env):
    outputs = template(env, "storage").to_json()["Outputs"]
    assert outputs["CloudFrontDistributionId"]["Value"] == {"Ref": "Distribution830FAC52"}


@pytest.mark.parametrize("env", ENVS)
def test_api_origin_is_the_alb_host_over_tls_1_2(template, cfg, env):
    config = distribution_config(template, env)
    origin = origin_of(config, config["DefaultCacheBehavior"])
    assert origin["DomainName"] == naming.api_host(cfg.environments[env])
    assert origin["CustomOriginConfig"] == {"OriginProtocolPolicy": "https-only", "OriginSSLProtocols": ["TLSv1.2"]}
    assert "OriginCustomHeaders" not in origin


@pytest.mark.parametrize("env", ENVS)
def test_public_objects_are_cached_from_the_api(template, env):
    config = distribution_config(template, env)
    public = behaviors(template, env)["/storage/v1/object/public/*"]
    assert public["CachePolicyId"]["Ref"].startswith("PublicObjectsCachePolicy")
    assert "POST" not in public["AllowedMethods"]
    assert origin_of(config, public)["DomainName"].startswith("api.")
    template(env, "storage").has_resource_properties(
        "AWS::CloudFront::CachePolicy",
        {
            "CachePolicyConfig": Match.object_like(
                {
                    "DefaultTTL": 3600,
                    "MinTTL": 0,
                    "ParametersInCacheKeyAndForwardedToOrigin": Match.object_like(
                        {
                            "CookiesConfig": {"CookieBehavior": "none"},
                            "HeadersConfig": {"HeaderBehavior": "none"},
                            "QueryStringsConfig": {"QueryStringBehavior": "all"},
                        }
                    ),
                }
            ),
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_static_assets_come_from_s3_through_oac(template, cfg, env):
    t = template(env, "storage")
    config = distribution_config(template, env)
    static = behaviors(template, env)["/static/*"]
    assert static["CachePolicyId"] == CACHING_OPTIMIZED
    origin = origin_of(config, static)
    assert origin["DomainName"].startswith(naming.storage_bucket(cfg, env) + ".s3.")
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    [oac_id] = t.find_resources("AWS::CloudFront::OriginAccessControl")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    t.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": Match.object_like(
                {
                    "OriginAccessControlOriginType": "s3",
                    "SigningBehavior": "always",
                    "SigningProtocol": "sigv4",
                }
            ),
        },
    )


@pytest.mark.parametrize("env", ENVS)
def test_cloudfront_reads_only_static_prefix_of_this_distribution(template, env):
    t = template(env, "storage")
    [dist_id] = t.find_resources("AWS::CloudFront::Distribution")
    [policy] = t.find_resources("AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": "StorageBucket"}}}).values()
    statements = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert len(statements) == 1
    [statement] = statements
    assert statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": ["StorageBucket", "Arn"]}, "/static/*"]]}
    source_arn = statement["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert {"Ref": dist_id} in source_arn["Fn::Join"][1]
    key_statements = t.to_json()["Resources"]["StorageKey"]["Properties"]["KeyPolicy"]["Statement"]
    [key_statement] = [s for s in key_statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert key_statement["Action"] == "kms:Decrypt"
    assert key_statement["Condition"]["StringEquals"]["AWS:SourceArn"] == source_arn


@pytest.mark.parametrize("env", ENVS)
def test_alias_records_point_cdn_host_at_the_distribution(template, cfg, env):
    e = cfg.environments[env]
    t = template(env, "storage")
    [dist_id] = t.find_resources("AWS::CloudFront::Distribution")
    for record_type in ("A", "AAAA"):
        t.has_resource_properties(
            "AWS::Route53::RecordSet",
            {
                "Name": f"cdn.{e.domain_name}.",
                "Type": record_type,
                "HostedZoneId": e.hosted_zone_id,
                "AliasTarget": {"DNSName": {"Fn::GetAtt": [dist_id, "DomainName"]}, "HostedZoneId": Match.any_value()},
            },
        )


@pytest.mark.parametrize(("unit", "scope"), [("edge", "CLOUDFRONT"), ("storage", "REGIONAL")])
@pytest.mark.parametrize("env", ENVS)
def test_web_acl_rules_and_rate_limit(template, cfg, env, unit, scope):
    acl = web_acl(template, env, unit)
    assert acl["Scope"] == scope
    assert acl["DefaultAction"] == {"Allow": {}}
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert all(r["VisibilityConfig"]["CloudWatchMetricsEnabled"] for r in rules.values())
    assert len({r["Priority"] for r in rules.values()}) == len(rules)
    rate = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert rate == {
        "AggregateKeyType": "IP",
        "Limit": cfg.environments[env].storage.waf_rate_limit_per_5min,
        "EvaluationWindowSec": 300,
    }
    assert rules["RateLimitPerIp"]["Action"] == {"Block": {}}
    for group in MANAGED_RULE_GROUPS:
        statement = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert statement["VendorName"] == "AWS" and statement["Name"] == group
        assert rules[group]["OverrideAction"] == {"None": {}}


@pytest.mark.parametrize("unit", ["edge", "storage"])
def test_oversized_bodies_blocked_everywhere_but_storage_uploads(template, unit):
    rules = {r["Name"]: r for r in web_acl(template, "staging", unit)["Rules"]}
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]
    oversized = rules["OversizedBodyOutsideStorage"]
    assert oversized["Action"] == {"Block": {}}
    assert oversized["Priority"] > rules["AWSManagedRulesCommonRuleSet"]["Priority"]
    label, negated = oversized["Statement"]["AndStatement"]["Statements"]
    assert label == {"LabelMatchStatement": {"Key": SIZE_RESTRICTIONS_BODY_LABEL, "Scope": "LABEL"}}
    path = negated["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert path["SearchString"] == UPLOAD_PATH_PREFIX and path["PositionalConstraint"] == "STARTS_WITH"
    assert path["FieldToMatch"] == {"UriPath": {}}


def test_regional_sqli_rules_skip_studio_only(template, cfg):
    regional = {r["Name"]: r for r in web_acl(template, "staging", "storage")["Rules"]}
    scope_down = regional["AWSManagedRulesSQLiRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["ScopeDownStatement"]
    host = scope_down["NotStatement"]["Statement"]["ByteMatchStatement"]
    assert host["SearchString"] == naming.studio_host(cfg.environments["staging"])
    assert host["FieldToMatch"] == {"SingleHeader": {"Name": "host"}}
    edge = {r["Name"]: r for r in web_acl(template, "staging", "edge")["Rules"]}
    assert "ScopeDownStatement" not in edge["AWSManagedRulesSQLiRuleSet"]["Statement"]["ManagedRuleGroupStatement"]


@pytest.mark.parametrize(("unit", "suffix"), [("edge", "cloudfront"), ("storage", "regional")])
@pytest.mark.parametrize("env", ENVS)
def test_waf_logs_to_encrypted_log_group_with_secrets_redacted(template, cfg, env, unit, suffix):
    t = template(env, unit)
    name = f"aws-waf-logs-{cfg.project}-{env}-{suffix}"
    [(group_id, group)] = t.find_resources("AWS::Logs::LogGroup", {"Properties": {"LogGroupName": name}}).items()
    assert group["Properties"]["RetentionInDays"] == 365
    assert "Fn::GetAtt" in group["Properties"]["KmsKeyId"]
    [logging] = t.find_resources("AWS::WAFv2::LoggingConfiguration").values()
    destination = logging["Properties"]["LogDestinationConfigs"][0]
    assert destination["Fn::Join"][1][-1].endswith(f":log-group:{name}")
    assert group_id in logging["DependsOn"]
    redacted = [f["SingleHeader"]["Name"] for f in logging["Properties"]["RedactedFields"]]
    assert redacted == list(REDACTED_HEADERS)


@pytest.fixture(scope="module")
def without_cloudfront(cfg) -> Template:
    """Two stacks (not the app) synthesized from a config with features.cloudfront off."""
    env = cfg.environments["dev"]
    off = env.model_copy(update={"features": env.features.model_copy(update={"cloudfront": False})})
    custom = cfg.model_copy(update={"environments": {**cfg.environments, "dev": off}})
    app = cdk.App()
    dr = DrStack(
        app,
        "dr",
        cfg=custom,
        env_name="dev",
        env=cdk.Environment(account=env.account.id, region=env.dr_region),
        cross_region_references=True,
    )
    storage = StorageStack(
        app,
        "storage",
        cfg=custom,
        env_name="dev",
        dr=dr,
        edge=None,
        env=cdk.Environment(account=env.account.id, region=env.region),
        cross_region_references=True,
    )
    assert storage.distribution is None and storage.distribution_domain_name is None
    return Template.from_stack(storage)


def test_cloudfront_feature_off_skips_distribution(without_cloudfront):
    without_cloudfront.resource_count_is("AWS::CloudFront::Distribution", 0)
    without_cloudfront.resource_count_is("AWS::Route53::RecordSet", 0)
    # The ALB side is unaffected.
    without_cloudfront.resource_count_is("AWS::WAFv2::WebACL", 1)
    without_cloudfront.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": Match.string_like_regexp("-access-logs-"),
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        },
    )
