"""`make local`: python -m scripts.local [--config FILE] [--env NAME] [--out DIR] [--state DIR].

Writes the Compose project and says how to start it; exit 2 with the reason when the config
is refused or the chart renders something the local stack has no rule for."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config import ConfigError, load_config
from config.naming import SecretKeys
from ops.mint_api_keys.handler import KEY_FIELDS, PUBLISHABLE_KEY_FIELD
from scripts.local import COMPOSE_FILE, SECRETS_FILE, STATE_DIR, LocalRenderError, write_project
from scripts.local.differences import API_PORT, DB_PORT, MAIL_UI_PORT, STUDIO_PORT

# The keys a client application embeds: the new publishable key and, while legacy keys are on,
# the legacy anon key.
PRINTED_KEYS = (("publishable key", PUBLISHABLE_KEY_FIELD), ("anon key", KEY_FIELDS["anon"]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make local")
    parser.add_argument("--config", default=None, help="organization config (default: the embedded example)")
    parser.add_argument("--env", default=None, help="environment whose chart runs locally (default: dev)")
    parser.add_argument("--out", type=Path, default=Path("cdk.out/local"), help="where compose.yaml is written")
    parser.add_argument("--state", type=Path, default=STATE_DIR, help="generated secrets and Storage objects")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        project = write_project(cfg, args.out, env_name=args.env, state_dir=args.state)
    except ConfigError as error:
        print(f"config error:\n{error}", file=sys.stderr)
        return 2
    except LocalRenderError as error:
        print(f"local render error: {error}", file=sys.stderr)
        return 2
    compose = args.out / COMPOSE_FILE
    services = project.compose["services"]
    print(f"{compose}: {len(services)} services ({', '.join(services)}), the Supabase chart of `{project.env_name}`")
    print(f"start:  docker compose -f {compose} up -d")
    keys = {name: project.secrets.get(f"{SecretKeys.API_KEYS}#{field}") for name, field in PRINTED_KEYS}
    print(f"API     http://localhost:{API_PORT}  ({', '.join(f'{name}: {key}' for name, key in keys.items() if key)})")
    print(f"Studio  http://localhost:{STUDIO_PORT}")
    print(f"db      postgresql://supabase_admin@localhost:{DB_PORT}/postgres?sslmode=require")
    print(f"mail    http://localhost:{MAIL_UI_PORT}")
    print(f"state   {args.state} ({SECRETS_FILE}, storage/); start over: docker compose -f {compose} down -v")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
