"""The stacks' typed public attributes, which the stacks built after them consume.

Only the constructs show these (the templates hold their resolved values), so these tests use
`production_stage`, the default organization's production stage (every feature on) built as
constructs; every other test reads the synthesized assembly, where each environment's values
are checked.
"""

from __future__ import annotations

import pytest

from config.naming import SecretKeys
from database.roles import LOGIN_ROLES

# Builds a whole environment stage.
pytestmark = pytest.mark.long


def test_storage_stack_exposes_typed_attributes(production_stage, cfg):
    env = cfg.environments[production_stage.env_name]
    storage = production_stage.storage
    assert storage.stack_name == f"{production_stage.env_name}-storage"
    assert storage.region == env.region
    assert storage.bucket_region == env.region
    assert storage.termination_protection is True
    resolve = storage.resolve
    assert resolve(storage.bucket_name) == {"Ref": "StorageBucket"}
    assert resolve(storage.bucket_key.key_arn) == {"Fn::GetAtt": ["StorageKey", "Arn"]}
    assert resolve(storage.velero_bucket.bucket_name) == {"Ref": "VeleroBucket"}
    assert resolve(storage.regional_web_acl_arn) == resolve(storage.regional_web_acl.attr_arn)
    assert resolve(storage.certificate_arn)["Ref"].startswith("ApiCertificate")
    assert resolve(storage.distribution_domain_name)["Fn::GetAtt"][1] == "DomainName"


def test_data_stack_exposes_what_other_stacks_use(production_stage):
    data = production_stage.data
    assert data.db_instance.node.path == f"{production_stage.env_name}/data/Database/Primary"
    assert data.read_replicas
    assert len(data.read_replicas) == len(data.database.read_replicas)
    assert data.db_security_group is data.database.security_group
    assert data.cache_security_group is data.cache.security_group
    assert data.data_key.node.path == f"{production_stage.env_name}/data/DataKey"
    assert data.jwt_secret is data.secrets[SecretKeys.JWT]
    assert data.api_keys_secret is data.secrets[SecretKeys.API_KEYS]
    assert {r.secret_key for r in LOGIN_ROLES} <= set(data.secrets)


def test_distribution_attaches_the_cloudfront_scope_acl(production_stage):
    storage = production_stage.storage
    edge = production_stage.edge
    assert storage.distribution is not None
    assert storage.cdn_host == f"cdn.{storage.api_host.removeprefix('api.')}"
    assert edge.web_acl.web_acl.scope == "CLOUDFRONT"
