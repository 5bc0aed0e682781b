"""The app built as `cdk synth` builds it, for the tests.

`cdk synth` runs app.py with the context of cdk.json (the feature flags), `-c config=FILE`, and
what the CLI itself adds: construct paths and asset metadata on each resource and the
AWS::CDK::Metadata resource. An app built here gets the same context, so a template synthesized
in a test is the template the CLI writes (asset locations and the analytics string aside), and
the suite can check `make synth`'s own cdk.out in place of synthesizing that organization again.
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk

from config import OrgConfig
from stacks.composition import build_app

ROOT = Path(__file__).resolve().parents[1]
# The context the CDK CLI gives every app it runs (@aws-cdk/toolkit-lib's contextFromSettings:
# pathMetadata, assetMetadata and versionReporting default to on; bundlingStacks to every stack).
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
    # The app writes validation-report.json and leaves failing to the CLI, which reads it.
    "@aws-cdk/core:failSynthOnValidationErrors": False,
}


def app(outdir: Path, *, config_file: Path | None = None) -> cdk.App:
    """An empty app with `cdk synth`'s context; `config_file` is what `-c config=` would name."""
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]
    context = {**flags, **CLI_CONTEXT}
    if config_file is not None:
        # The pipeline's build step synthesizes from the config the app came from.
        context["config"] = str(config_file.relative_to(ROOT) if config_file.is_relative_to(ROOT) else config_file)
    return cdk.App(outdir=str(outdir), context=context)


def synthesize(cfg: OrgConfig, outdir: Path, *, config_file: Path | None = None) -> None:
    """Writes `cfg`'s cloud assembly into `outdir`, as `cdk synth` does: cdk-nag's packs run and
    their findings go to validation-report.json."""
    built = app(outdir, config_file=config_file)
    build_app(built, cfg)
    built.synth()
