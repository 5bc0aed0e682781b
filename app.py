#!/usr/bin/env python3
"""Entry point: load the config named by `-c config=FILE` (default: the embedded example)
and build every stack from it. A bad config stops here with a message, not a stack trace, and
so do Lambda dependencies that `make install` has not built.

The app synthesizes into a scratch directory beside the output directory and moves the
result in only when synthesis succeeded, so a failure never leaves a half-written cdk.out.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import aws_cdk as cdk

from config import ConfigError, load_config
from constructs_lib.lambda_deps import LambdaDependenciesError
from stacks.composition import build_app

# Written by cdk.App.synth when a policy validation plugin (cdk-nag) reports findings.
VALIDATION_REPORT = "validation-report.json"


def _publish(scratch: Path, outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.iterdir():
        # The CDK CLI holds its read/synth locks in the output directory while the app runs.
        if old.suffix != ".lock":
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    for new in scratch.iterdir():
        new.rename(outdir / new.name)
    scratch.rmdir()


def main() -> int:
    outdir = Path(os.environ.get("CDK_OUTDIR") or "cdk.out").resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-", dir=outdir.parent))
    try:
        app = cdk.App(outdir=str(scratch))
        try:
            cfg = load_config(app.node.try_get_context("config"))
        except ConfigError as exc:
            print(f"config error:\n{exc}", file=sys.stderr)
            return 1
        try:
            build_app(app, cfg)
            app.synth()
        except ConfigError as exc:
            # Facts about the config that only the constructs know (e.g. where the file lives).
            print(f"config error:\n{exc}", file=sys.stderr)
            return 1
        except LambdaDependenciesError as exc:
            print(f"build error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:
            if os.environ.get("CDK_DEBUG"):
                raise
            report = scratch / VALIDATION_REPORT
            if report.exists():
                kept = outdir.parent / f"{outdir.name}-{VALIDATION_REPORT}"
                report.replace(kept)
                print(
                    f"synth error: policy validation failed (findings above; report in {kept}). "
                    "Nothing was written to the output directory.",
                    file=sys.stderr,
                )
                return 2
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(
                f"synth error: {first}\nThe loader accepted this config, so this is a bug in this project: "
                "please report it with your config. Nothing was written to the output directory; "
                "CDK_DEBUG=1 shows the full trace.",
                file=sys.stderr,
            )
            return 2
        _publish(scratch, outdir)
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
