"""Facts about AWS regions that the config is checked against, so synth never looks them up.

Zone letters: AWS "Availability Zones" (https://docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html)
and `aws ec2 describe-availability-zones --region R --query 'AvailabilityZones[].ZoneName'`.
Zone names are mapped to physical zones per account; in most regions every account sees the
same letters. Where accounts see different letters (us-west-1: two of a/b/c; ap-northeast-1:
three of a/b/c/d, new accounts get a/c/d) the config must name its zones, because a guessed
default would deploy into a zone that does not exist in that account.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegionZones:
    letters: str  # every letter some account can see
    per_account: int  # how many of them one account sees

    @property
    def ambiguous(self) -> bool:
        return len(self.letters) > self.per_account


def _zones(letters: str, per_account: int | None = None) -> RegionZones:
    return RegionZones(letters, per_account or len(letters))


# Commercial regions in which every service this platform uses (EKS with Pod Identity, RDS
# PostgreSQL, ElastiCache Valkey, Backup, WAF, AppConfig, GuardDuty, Security Hub) is offered
# (https://aws.amazon.com/about-aws/global-infrastructure/regional-product-services/) and whose
# RDS root CA is in the pinned bundle the pods verify RDS with (k8s_charts/supabase/rds_ca.py;
# ca-west-1 and il-central-1 are not in it yet, tests/unit/test_config.py keeps the two in step).
ZONES: dict[str, RegionZones] = {
    "us-east-1": _zones("abcdef"),
    "us-east-2": _zones("abc"),
    "us-west-1": _zones("abc", 2),
    "us-west-2": _zones("abcd"),
    "ca-central-1": _zones("abd"),
    "sa-east-1": _zones("abc"),
    "eu-west-1": _zones("abc"),
    "eu-west-2": _zones("abc"),
    "eu-west-3": _zones("abc"),
    "eu-central-1": _zones("abc"),
    "eu-central-2": _zones("abc"),
    "eu-north-1": _zones("abc"),
    "eu-south-1": _zones("abc"),
    "eu-south-2": _zones("abc"),
    "ap-south-1": _zones("abc"),
    "ap-south-2": _zones("abc"),
    "ap-southeast-1": _zones("abc"),
    "ap-southeast-2": _zones("abc"),
    "ap-southeast-3": _zones("abc"),
    "ap-southeast-4": _zones("abc"),
    "ap-northeast-1": _zones("abcd", 3),
    "ap-northeast-2": _zones("abcd"),
    "ap-northeast-3": _zones("abc"),
    "ap-east-1": _zones("abc"),
    "me-south-1": _zones("abc"),
    "me-central-1": _zones("abc"),
    "af-south-1": _zones("abc"),
}

# Graviton4 (m8g, r8g, c8g) is not offered everywhere yet. Allow-list of regions where EC2, RDS
# and ElastiCache all offer it, from the AWS launch announcements
# (https://aws.amazon.com/ec2/instance-types/m8g/, https://aws.amazon.com/rds/instance-types/);
# elsewhere the 7g (Graviton3) families are the choice. Unknown is treated as unavailable.
GRAVITON4_FAMILIES = ("m8g", "r8g", "c8g")
GRAVITON4_REGIONS = frozenset({"us-east-1", "us-east-2", "us-west-2", "eu-central-1", "eu-west-1", "ap-northeast-1"})

# Where a service does not offer a Graviton family that the allow-lists of config/model.py hold,
# by region; every other allowed family is offered in every region of ZONES (the 8g families only
# in GRAVITON4_REGIONS). From AWS's price list per region, as cfn-lint ships it for its regional
# rules (E3025 RDS instance classes, E3628 EC2 instance types, ElastiCache node types);
# tests/unit/test_region_offerings.py compares these tables with the installed cfn-lint's data, so
# a cfn-lint upgrade that sees a region gain or lose a family fails until they are updated.
# A deploy with a family the region lacks fails in CloudFormation after the network is built.
RDS_POSTGRES_FAMILIES_NOT_OFFERED: dict[str, frozenset[str]] = {
    "af-south-1": frozenset({"m7g", "r7g"}),
    "ap-east-1": frozenset({"m7g"}),
    "ap-southeast-4": frozenset({"r7g"}),
    "eu-south-1": frozenset({"m7g"}),
    "eu-west-3": frozenset({"r7g"}),
    "me-central-1": frozenset({"r7g"}),
}
EC2_FAMILIES_NOT_OFFERED: dict[str, frozenset[str]] = {
    "ap-southeast-4": frozenset({"c7g"}),
    "eu-south-1": frozenset({"m7g"}),
    "me-central-1": frozenset({"c7g"}),
}
ELASTICACHE_FAMILIES_NOT_OFFERED: dict[str, frozenset[str]] = {
    "eu-south-1": frozenset({"m7g"}),
    "me-central-1": frozenset({"t4g"}),
    "me-south-1": frozenset({"t4g"}),
}


def family(size: str) -> str:
    """The instance family of a size: 'db.r7g.large', 'cache.t4g.small', 'm7g.xlarge' -> 'r7g', 't4g', 'm7g'."""
    return size.split(".")[-2]
