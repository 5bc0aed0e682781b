"""`make local`: python -m scripts.local [CONFIG] [OUTDIR] [STATE_DIR]. Writes the Compose project and says
how to start it; exit 2 with the reason when the chart renders something it has no local rule for."""

from __future__ import annotations

import sys
from pathlib import Path

from config import ConfigError, load_config
from scripts.local import COMPOSE_FILE, LOCAL_ENV, SECRETS_FILE, STATE_DIR, LocalRenderError, write_project
from scripts.local.differences import API_PORT, DB_PORT, MAIL_UI_PORT, STUDIO_PORT


def main(argv: list[str]) -> int:
    outdir = Path(argv[2]) if len(argv) > 2 else Path("cdk.out/local")
    state_dir = Path(argv[3]) if len(argv) > 3 else STATE_DIR
    try:
        cfg = load_config(argv[1] if len(argv) > 1 else None)
        project = write_project(cfg, outdir, state_dir=state_dir)
    except ConfigError as error:
        print(f"config error:\n{error}", file=sys.stderr)
        return 2
    except LocalRenderError as error:
        print(f"local render error: {error}", file=sys.stderr)
        return 2
    compose = outdir / COMPOSE_FILE
    services = project.compose["services"]
    print(f"{compose}: {len(services)} services ({', '.join(services)}), Supabase chart of `{LOCAL_ENV}`")
    print(f"start:  docker compose -f {compose} up -d")
    print(f"API     http://localhost:{API_PORT}  (anon key: {project.secrets['api-keys#anon_key']})")
    print(f"Studio  http://localhost:{STUDIO_PORT}")
    print(f"db      postgresql://supabase_admin@localhost:{DB_PORT}/postgres?sslmode=require")
    print(f"mail    http://localhost:{MAIL_UI_PORT}")
    print(f"state   {state_dir} ({SECRETS_FILE}, storage/); start over: docker compose -f {compose} down -v")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
