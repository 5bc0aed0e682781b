"""`make cdn-invalidate` prints commands an operator can paste: they name the stack and output the
storage stack really has (tests/unit/test_edge.py checks the output) and the default paths are
the public objects the CDN caches."""

from __future__ import annotations

import shlex

import pytest

from scripts import cdn_invalidate
from stacks.storage_stack import PUBLIC_OBJECTS_PATH
from tests.conftest import ORG_CONFIGS


def run(capsys, *args: str) -> list[str]:
    assert cdn_invalidate.main(list(args)) == 0
    return capsys.readouterr().out.splitlines()


def test_prints_lookup_invalidation_and_kong_restart(capsys, assembly):
    lines = [line for line in run(capsys, "--env", "prod") if not line.startswith("#")]
    lookup = shlex.split(lines[0].removeprefix("DISTRIBUTION_ID=$(").removesuffix(")"))
    stack = lookup[lookup.index("--stack-name") + 1]
    assert stack == assembly.stack("prod/storage").stack_name
    assert lookup[lookup.index("--region") + 1] == assembly.stack("prod/storage").region
    assert "'CloudFrontDistributionId'" in lookup[lookup.index("--query") + 1]
    invalidate = shlex.split(lines[1])
    assert invalidate[:3] == ["aws", "cloudfront", "create-invalidation"]
    assert invalidate[invalidate.index("--paths") + 1 :] == [PUBLIC_OBJECTS_PATH]
    assert shlex.split(lines[2]) == ["kubectl", "-n", "supabase", "rollout", "restart", "deployment/kong"]


def test_paths_narrow_the_invalidation(capsys):
    lines = run(capsys, "--env", "prod", "--paths", "/storage/v1/object/public/avatars/*")
    invalidate = shlex.split(next(line for line in lines if "create-invalidation" in line))
    assert invalidate[-1] == "/storage/v1/object/public/avatars/*"


def test_environment_without_cloudfront_gets_the_kong_step_only(capsys):
    lines = run(capsys, "--config", str(ORG_CONFIGS["acme"]), "--env", "qa")
    assert not any("create-invalidation" in line for line in lines)
    assert lines[-1].startswith("kubectl")


@pytest.mark.parametrize("env", ["nope"])
def test_unknown_environment_is_refused(capsys, env):
    assert cdn_invalidate.main(["--env", env]) == 2
