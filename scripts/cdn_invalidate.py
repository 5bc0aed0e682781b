"""Prints the commands that empty the caches in front of an environment's public objects.

CloudFront: an invalidation of PATHS (default: every public object) on the environment's
distribution, whose id the storage stack exports as an output. Kong: its proxy-cache lives in
each pod's memory for at most GATEWAY_CACHE's TTL; a rolling restart empties it sooner.
Nothing is run: the commands need the environment account's credentials.
Usage: python -m scripts.cdn_invalidate --env ENV [--config FILE] [--paths '/a/*' ...]
"""

from __future__ import annotations

import argparse
import shlex
import sys

from config import ConfigError, load_config, naming
from config.model import OrgConfig
from k8s_charts.supabase.kong import GATEWAY_CACHE
from stacks.storage_stack import CDN_DISTRIBUTION_OUTPUT, PUBLIC_OBJECTS_PATH

KONG_DEPLOYMENT = "kong"
SUPABASE_NAMESPACE = "supabase"


def commands(cfg: OrgConfig, env_name: str, paths: list[str]) -> list[list[str]]:
    env = cfg.environments[env_name]
    lookup = [
        "aws",
        "cloudformation",
        "describe-stacks",
        "--region",
        env.region,
        "--stack-name",
        naming.stack_name(env_name, "storage"),
        "--query",
        f"Stacks[0].Outputs[?OutputKey=='{CDN_DISTRIBUTION_OUTPUT}'].OutputValue",
        "--output",
        "text",
    ]
    invalidate = [
        "aws",
        "cloudfront",
        "create-invalidation",
        "--distribution-id",
        "$DISTRIBUTION_ID",
        "--paths",
        *paths,
    ]
    restart = ["kubectl", "-n", SUPABASE_NAMESPACE, "rollout", "restart", f"deployment/{KONG_DEPLOYMENT}"]
    return [lookup, invalidate, restart]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config")
    parser.add_argument("--env", required=True)
    parser.add_argument("--paths", nargs="+", default=[PUBLIC_OBJECTS_PATH])
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"config error:\n{exc}", file=sys.stderr)
        return 1
    if args.env not in cfg.environments:
        print(f"no environment {args.env!r}; one of {', '.join(cfg.environments)}", file=sys.stderr)
        return 2
    env = cfg.environments[args.env]
    if not env.features.cloudfront:
        print(f"# {args.env} has no CloudFront distribution (features.cloudfront: false)")
    lookup, invalidate, restart = commands(cfg, args.env, args.paths)
    if env.features.cloudfront:
        print(f"# CloudFront ({args.env}), with the account's credentials:")
        # The JMESPath query holds single quotes: double-quote it for the shell (it has no $ or `).
        shown = [f'"{a}"' if a.startswith("Stacks[0]") else shlex.quote(a) for a in lookup]
        print(f"DISTRIBUTION_ID=$({' '.join(shown)})")
        print(" ".join(shlex.quote(a) if a != "$DISTRIBUTION_ID" else '"$DISTRIBUTION_ID"' for a in invalidate))
    print(f"# Kong's gateway cache empties itself within {GATEWAY_CACHE['cache_ttl']} s; to empty it now:")
    print(shlex.join(restart))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
