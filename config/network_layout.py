"""Subnet layout of every environment's VPC: one definition for the config check and the stack.

CDK's `IpAddresses.cidr` hands out subnets tier by tier, zone by zone, each aligned to its own
size, and throws a jsii error at synth ("1 of /19 exceeds remaining space") when the next one
does not fit. `plan()` replays that allocation, so the loader refuses a range that cannot hold
the layout (with a message) and the network stack uses the largest pod subnet the range allows.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# AWS: a VPC's primary IPv4 block is between /16 and /28.
# https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html
VPC_LARGEST_PREFIX = 16

# NAT gateways and internet-facing ALBs only; RDS and ElastiCache only.
PUBLIC_PREFIX = 24
DATABASE_PREFIX = 24
# The VPC CNI gives every pod a VPC address, so the private tier takes the largest subnet that
# fits: /19 (8,192 addresses per zone) in a /16, down to /22 (1,024), below which a few nodes'
# pods (up to 29 each on a large Graviton node, plus warm IPs) exhaust the subnet.
POD_PREFIXES = (19, 20, 21, 22)


@dataclass(frozen=True)
class SubnetPlan:
    private_prefix: int
    # In CDK's allocation order: every zone's public subnet, then private, then database.
    subnets: tuple[tuple[str, ipaddress.IPv4Network], ...]


def _allocate(vpc: ipaddress.IPv4Network, prefixes: list[int]) -> list[ipaddress.IPv4Network] | None:
    """aws-ec2 NetworkBuilder.addSubnet: next block of the size, aligned up; None when it would overflow."""
    start, end = int(vpc.network_address), int(vpc.broadcast_address)
    allocated = []
    for prefix in prefixes:
        size = 2 ** (32 - prefix)
        aligned = -(-start // size) * size
        if aligned + size - 1 > end:
            return None
        allocated.append(ipaddress.IPv4Network((aligned, prefix)))
        start = aligned + size
    return allocated


def plan(vpc: ipaddress.IPv4Network, zones: int) -> SubnetPlan | None:
    """The layout CDK will allocate in `vpc` for `zones` zones, or None when none fits."""
    for private in POD_PREFIXES:
        tiers = [("public", PUBLIC_PREFIX), ("private", private), ("database", DATABASE_PREFIX)]
        requested = [(tier, prefix) for tier, prefix in tiers for _ in range(zones)]
        subnets = _allocate(vpc, [prefix for _, prefix in requested])
        if subnets is not None:
            return SubnetPlan(private, tuple((tier, net) for (tier, _), net in zip(requested, subnets, strict=False)))
    return None


def smallest_vpc_prefix(zones: int) -> int:
    """Longest prefix (smallest range) that still holds the layout for `zones` zones."""
    prefix = VPC_LARGEST_PREFIX
    while plan(ipaddress.IPv4Network((0, prefix + 1)), zones) is not None:
        prefix += 1
    return prefix
