"""The stacks' typed public attributes, which the stacks built after them consume.

Only the constructs show these (the templates hold their resolved values), so these tests use
`environment_stages`, the default organization's stages built as constructs; every other test
reads the synthesized assembly.
"""

from __future__ import annotations

import pytest

from config.naming import SecretKeys
from database.roles import LOGIN_ROLES
from tests.conftest import ENVIRONMENTS

# Builds every environment stage.
pytestmark = pytest.mark.long


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_storage_stack_exposes_typed_attributes(environment_stages, cfg, env):
    storage = environment_stages[env].storage
    assert storage.stack_name == f"{env}-storage"
    assert storage.region == cfg.environments[env].region
    assert storage.bucket_region == cfg.environments[env].region
    assert storage.termination_protection is cfg.environments[env].production
    resolve = storage.resolve
    assert resolve(storage.bucket_name) == {"Ref": "StorageBucket"}
    assert resolve(storage.bucket_key.key_arn) == {"Fn::GetAtt": ["StorageKey", "Arn"]}
    assert resolve(storage.velero_bucket.bucket_name) == {"Ref": "VeleroBucket"}
    assert resolve(storage.regional_web_acl_arn) == resolve(storage.regional_web_acl.attr_arn)
    assert resolve(storage.certificate_arn)["Ref"].startswith("ApiCertificate")
    assert resolve(storage.distribution_domain_name)["Fn::GetAtt"][1] == "DomainName"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_stack_exposes_what_other_stacks_use(environment_stages, env):
    data = environment_stages[env].data
    assert data.db_instance.node.path == f"{env}/data/Database/Primary"
    assert len(data.read_replicas) == len(data.database.read_replicas)
    assert data.db_security_group is data.database.security_group
    assert data.cache_security_group is data.cache.security_group
    assert data.data_key.node.path == f"{env}/data/DataKey"
    assert data.jwt_secret is data.secrets[SecretKeys.JWT]
    assert data.api_keys_secret is data.secrets[SecretKeys.API_KEYS]
    assert {r.secret_key for r in LOGIN_ROLES} <= set(data.secrets)


def test_distribution_attaches_the_cloudfront_scope_acl(environment_stages):
    storage = environment_stages["staging"].storage
    edge = environment_stages["staging"].edge
    assert storage.distribution is not None
    assert storage.cdn_host == f"cdn.{storage.api_host.removeprefix('api.')}"
    assert edge.web_acl.web_acl.scope == "CLOUDFRONT"
