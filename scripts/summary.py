"""Prints the stacks of a synthesized cloud assembly as a table, grouped by account and region.

Usage: python -m scripts.summary cdk.out
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def stacks(assembly_dir: Path) -> list[tuple[str, str, str, str]]:
    """(account, region, stack name, template file) for every stack, nested stages included."""
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    found = []
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact["type"] == "aws:cloudformation:stack":
            _, _, account_region = artifact["environment"].partition("aws://")
            account, _, region = account_region.partition("/")
            props = artifact.get("properties", {})
            found.append((account, region, props.get("stackName", artifact_id), props.get("templateFile", "")))
        elif artifact["type"] == "cdk:cloud-assembly":
            found += stacks(assembly_dir / artifact["properties"]["directoryName"])
    return found


def main(argv: list[str]) -> int:
    assembly_dir = Path(argv[1] if len(argv) > 1 else "cdk.out")
    rows = sorted(stacks(assembly_dir))
    width = max(len(name) for _, _, name, _ in rows)
    print(f"{'account':<14}{'region':<16}{'stack':<{width + 2}}resources")
    previous = None
    for account, region, name, template in rows:
        files = list(assembly_dir.rglob(template))
        resources = len(json.loads(files[0].read_text()).get("Resources", {})) if files else 0
        label = (account, region) if (account, region) != previous else ("", "")
        print(f"{label[0]:<14}{label[1]:<16}{name:<{width + 2}}{resources}")
        previous = (account, region)
    accounts = {a for a, _, _, _ in rows}
    regions = {r for _, r, _, _ in rows}
    print(f"{len(rows)} stacks in {len(accounts)} accounts and {len(regions)} regions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
