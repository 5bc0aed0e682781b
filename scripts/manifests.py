"""Writes each environment's Kubernetes manifests as plain YAML: cdk.out/manifests/<env>/<chart>.yaml.

Rendered from config alone (k8s_charts.environment.render_manifests), so reviewers can diff
what a change does to the cluster without AWS access. `make synth` calls `write_manifests`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from config import load_config, yamlio
from config.model import OrgConfig
from k8s_charts.environment import render_manifests


def write_manifests(cfg: OrgConfig, outdir: Path) -> list[Path]:
    written = []
    for env_name in cfg.environments:
        env_dir = outdir / env_name
        env_dir.mkdir(parents=True, exist_ok=True)
        for chart_id, objects in render_manifests(cfg, env_name).items():
            path = env_dir / f"{chart_id}.yaml"
            path.write_text(yamlio.dump_all(objects, sort_keys=False), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    config_file = sys.argv[1] if len(sys.argv) > 1 else None
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("cdk.out/manifests")
    for written_path in write_manifests(load_config(config_file), out):
        print(written_path)
