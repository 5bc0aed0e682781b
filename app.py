#!/usr/bin/env python3
"""Entry point: load the config named by `-c config=FILE` (default: the embedded example)
and build every stack from it. A bad config stops here with a message, not a stack trace."""

import sys

import aws_cdk as cdk

from config import ConfigError, load_config
from stacks.composition import build_app

app = cdk.App()
try:
    cfg = load_config(app.node.try_get_context("config"))
except ConfigError as exc:
    print(f"config error:\n{exc}", file=sys.stderr)
    sys.exit(1)
build_app(app, cfg)
app.synth()
