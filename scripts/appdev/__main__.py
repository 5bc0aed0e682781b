"""Application developers' targets: python -m scripts.appdev {migrate,drift,api-docs,sdk}.

    migrate ENV    apply supabase/migrations to ENV's database (what the db-migrate Job does)
    drift ENV      exit 1 and print the SQL when ENV's schema differs from what the migrations make
    api-docs OUT   OpenAPI description and HTML of the REST API of the migrated schema, linted
    sdk OUT        typed clients (TypeScript, Python, Go, Swift) from the migrated schema

api-docs and sdk never touch an environment: they migrate a scratch PostgreSQL 17.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import ConfigError, load_config
from scripts.appdev import connection
from scripts.appdev.drift import drift
from scripts.appdev.scratch import ToolError, migrate, migrated_scratch


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.appdev")
    parser.add_argument("--config", default=None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("migrate", "drift"):
        sub.add_parser(name).add_argument("env")
    for name in ("api-docs", "sdk"):
        sub.add_parser(name).add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command in ("migrate", "drift"):
            cfg = load_config(args.config)
            url = connection.database_url(cfg, args.env)
            if args.command == "migrate":
                print(migrate(url).stdout, end="")
                return 0
            statements = drift(url)
            if statements:
                print(f"drift: {args.env}'s schema differs from supabase/migrations; SQL that would make it match:")
                print(statements)
                return 1
            print(f"no drift: {args.env}'s schema is what supabase/migrations produce")
            return 0
        # Imported here: postgres-meta's pinned image tag lives in k8s_charts, whose import starts
        # the cdk8s (jsii) runtime, a second or two that migrate and drift need not wait for.
        from scripts.appdev import apidocs, sdk

        with migrated_scratch() as url:
            written = (
                apidocs.write(url, args.out, config=args.config)
                if args.command == "api-docs"
                else sdk.write(url, args.out)
            )
        for path in written:
            print(f"{path} ({path.stat().st_size} bytes)")
        return 0
    except (ConfigError, ToolError, ValueError) as error:
        print(f"{args.command} error:\n{error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
