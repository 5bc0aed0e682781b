"""postgres-meta (npm @supabase/postgres-meta, the version of the platform's meta image) on a
loopback port against a given database: the catalog the API docs read and the type generators
`supabase gen types` calls (/generators/typescript, go, swift, python)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from database.migrations import APP_SCHEMAS
from k8s_charts.supabase import images
from scripts.appdev.scratch import ROOT, ToolError, free_port

PACKAGE = ROOT / "node_modules" / "@supabase" / "postgres-meta"


@dataclass(frozen=True)
class Meta:
    url: str

    def get(self, path: str, **query: str) -> tuple[int, bytes]:
        full = self.url + path + ("?" + urlencode(query) if query else "")
        try:
            with urllib.request.urlopen(full, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def text(self, path: str, **query: str) -> str:
        status, body = self.get(path, **query)
        if status != 200:
            raise ToolError(f"postgres-meta {path}: HTTP {status}: {body[:500]!r}")
        return body.decode()

    def json(self, path: str, **query: str) -> Any:
        return json.loads(self.text(path, **query))

    def catalog(self, kind: str) -> list[dict[str, Any]]:
        """GET /tables, /views, /functions, /types ... of the application's schemas."""
        return self.json(f"/{kind}", included_schemas=",".join(APP_SCHEMAS))


def free_port_pair() -> int:
    """A port whose next one is free too: postgres-meta's admin server listens on PG_META_PORT + 1."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@contextmanager
def meta_server(database_url: str) -> Iterator[Meta]:
    port = free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "NODE_"))}
    env.update(
        PG_META_DB_URL=database_url,
        PG_META_HOST="127.0.0.1",
        PG_META_PORT=str(port),
        # The generated TypeScript records it (`__InternalSupabase.PostgrestVersion`), which
        # supabase-js uses to pick PostgREST's behaviour: the platform's rest image version.
        PG_META_POSTGREST_VERSION=images.REST.tag.lstrip("v"),
    )
    # postgres-meta takes the CA as PEM text in its own variable, not from the URL.
    root_cert = parse_qs(urlsplit(database_url).query).get("sslrootcert")
    if root_cert:
        env["PG_META_DB_SSL_ROOT_CERT"] = Path(root_cert[0]).read_text()
    log = Path(tempfile.mkstemp(prefix="pg-meta-", suffix=".log")[1])
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["node", str(PACKAGE / "dist" / "server" / "server.js")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PACKAGE,
        )
    meta = Meta(url=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise ToolError(f"postgres-meta exited {proc.returncode}:\n{log.read_text()}")
            try:
                if meta.get("/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise ToolError(f"postgres-meta did not answer /health:\n{log.read_text()}")
            time.sleep(0.05)
        yield meta
    finally:
        # Killed, not stopped: a scratch server has nothing to save, and postgres-meta 0.96.6's
        # graceful stop never finishes (its two servers' onClose hooks each wait for the other to
        # close) until close-with-grace gives up after 10 s, so SIGTERM only cost that wait.
        proc.kill()
        proc.wait()
        log.unlink(missing_ok=True)
