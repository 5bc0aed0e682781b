"""Prints (or runs) `cdk bootstrap` for every account and region in the config.

Member accounts trust the tooling account, which hosts the pipeline, and hand CloudFormation
the least-privilege execution policy from `<env>-deploy-access` instead of
AdministratorAccess. DR regions and us-east-1 (CloudFront certificate and WAF) are included.
Usage: python -m scripts.bootstrap [--config FILE] [--execute]
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from config import ConfigError, load_config
from config.model import OrgConfig
from config.naming import execution_policy_arn


def commands(cfg: OrgConfig) -> list[list[str]]:
    tooling = cfg.organization.tooling.id
    result = [
        [
            "npx",
            "cdk",
            "bootstrap",
            f"aws://{tooling}/{cfg.organization.tooling_region}",
            "--cloudformation-execution-policies",
            "arn:aws:iam::aws:policy/AdministratorAccess",
        ]
    ]
    for env in cfg.environments.values():
        for region in sorted({env.region, env.dr_region, "us-east-1"}):
            result.append(
                [
                    "npx",
                    "cdk",
                    "bootstrap",
                    f"aws://{env.account.id}/{region}",
                    "--trust",
                    tooling,
                    "--cloudformation-execution-policies",
                    execution_policy_arn(env.account.id),
                ]
            )
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--execute", action="store_true", help="run the commands (needs credentials for each account)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    print("# 1. In each member account, with its admin credentials, deploy its execution policy first:")
    for name in cfg.environments:
        print(f"make deploy ENV={name}-deploy-access CONFIG={args.config or 'config/default.yaml'}")
    print("# 2. Bootstrap (tooling account: the pipeline's home; members trust it):")
    for command in commands(cfg):
        print(shlex.join(command))
        if args.execute:
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
