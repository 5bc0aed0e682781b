"""The loader's tables of families a region lacks (config/regions.py) against AWS's price list.

cfn-lint ships, per region, the instance classes and types each service offers there (gathered
from the AWS pricing API) for its rules E3025 (RDS), E3628 (EC2) and the ElastiCache node type
enum. For every region of the zone table, a size the loader accepts must be on that list, and a
family the tables name must be missing from it whole: a table that lags lets a config through
that CloudFormation refuses mid-deploy, and one that is too strict refuses a config that works.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cfnlint.data.schemas.extensions as cfn_lint_extensions
import pytest

from config import model as m
from config.regions import (
    EC2_FAMILIES_NOT_OFFERED,
    ELASTICACHE_FAMILIES_NOT_OFFERED,
    GRAVITON4_FAMILIES,
    GRAVITON4_REGIONS,
    RDS_POSTGRES_FAMILIES_NOT_OFFERED,
    ZONES,
    family,
)

DATA = Path(cfn_lint_extensions.__file__).parent


@cache
def _regional(relative: str) -> dict:
    return json.loads((DATA / relative).read_text())


def rds_postgres(region: str) -> set[str]:
    rules = _regional("aws_rds_dbinstance/dbinstanceclass_enum.json")[region]["allOf"]
    return {
        size
        for rule in rules
        if rule["if"]["properties"].get("Engine", {}).get("const") == "postgres"
        for size in rule["then"]["properties"]["DBInstanceClass"]["enum"]
    }


def ec2(region: str) -> set[str]:
    return set(_regional("aws_ec2_instance/instancetype_enum.json")[region]["enum"])


def elasticache(region: str) -> set[str]:
    return set(_regional("aws_elasticache_cachecluster/cachenodetype_enum.json")[region]["enum"])


SERVICES: dict[str, tuple[frozenset[str], dict[str, frozenset[str]], Callable[[str], set[str]]]] = {
    "RDS for PostgreSQL": (m.RDS_INSTANCE_CLASSES, RDS_POSTGRES_FAMILIES_NOT_OFFERED, rds_postgres),
    "EC2": (m.NODE_INSTANCE_TYPES, EC2_FAMILIES_NOT_OFFERED, ec2),
    "ElastiCache": (m.CACHE_NODE_TYPES, ELASTICACHE_FAMILIES_NOT_OFFERED, elasticache),
}


@pytest.mark.parametrize("service", SERVICES)
def test_families_named_missing_are_exactly_those_the_price_list_lacks(service):
    allowed, not_offered, offered_in = SERVICES[service]
    wrong = []
    for region in sorted(ZONES):
        # The 8g families have their own rule (GRAVITON4_REGIONS); elsewhere the loader refuses them.
        accepted = {s for s in allowed if region in GRAVITON4_REGIONS or family(s) not in GRAVITON4_FAMILIES}
        offered = offered_in(region)
        lacking = {family(s) for s in accepted if s not in offered}
        partly = {family(s) for s in accepted if s in offered} & lacking
        if lacking != not_offered.get(region, frozenset()) or partly:
            wrong.append(
                f"{region}: price list lacks {sorted(lacking)} (partly {sorted(partly)}), table says "
                f"{sorted(not_offered.get(region, ()))}"
            )
    assert not wrong, "\n".join(wrong)
    assert set(not_offered) <= set(ZONES), sorted(set(not_offered) - set(ZONES))


def test_graviton4_regions_offer_the_8g_families_everywhere_the_loader_accepts_them():
    missing = [
        f"{service}: {s} in {region}"
        for service, (allowed, _, offered_in) in SERVICES.items()
        for region in sorted(GRAVITON4_REGIONS)
        for s in sorted(allowed)
        if family(s) in GRAVITON4_FAMILIES and s not in offered_in(region)
    ]
    assert not missing, missing
