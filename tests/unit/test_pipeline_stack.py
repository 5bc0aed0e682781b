"""Delivery pipeline: stage order, cross-account deployments, notifications, scans."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PROMOTION_ORDER


@pytest.fixture(scope="module")
def pipeline(template):
    t = template("pipeline")
    (resource,) = t.find_resources("AWS::CodePipeline::Pipeline").values()
    return t, resource["Properties"]


def stage(pipeline_props, name):
    return next(s for s in pipeline_props["Stages"] if s["Name"] == name)


def actions(pipeline_props, name):
    return sorted(stage(pipeline_props, name)["Actions"], key=lambda a: a["RunOrder"])


def test_stage_order(pipeline, cfg):
    _, props = pipeline
    names = [s["Name"] for s in props["Stages"]]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    order = cfg.pipeline.promotion_order
    assert [n for n in names if n in cfg.environments] == order
    assert names.index(order[0]) < names.index(order[-1])


def test_source_is_the_configured_connection(pipeline, cfg):
    _, props = pipeline
    (source,) = stage(props, "Source")["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == cfg.pipeline.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == cfg.pipeline.repository
    assert source["Configuration"]["BranchName"] == cfg.pipeline.branch


@pytest.mark.parametrize("org", ["default", "acme"])
def test_synth_builds_and_tests_the_deploying_config(synthesized, org):
    from tests.conftest import ORG_CONFIGS, ROOT

    config = ORG_CONFIGS[org].relative_to(ROOT).as_posix()
    t = synthesized(org).template("pipeline")
    projects = t.find_resources("AWS::CodeBuild::Project")
    synth = [p for p in projects.values() if "make test" in p["Properties"]["Source"]["BuildSpec"]]
    assert len(synth) == 1
    spec = json.loads(synth[0]["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == [f"make test CONFIG={config}"]
    smoke = [p for p in projects.values() if "SMOKE_ROLE_ARN" in json.dumps(p)]
    assert smoke and all(config in json.dumps(p) for p in smoke)


def test_first_environment_scanned_then_smoke_tested(pipeline, cfg):
    _, props = pipeline
    first = cfg.pipeline.promotion_order[0]
    steps = actions(props, first)
    assert steps[0]["Name"] == "SecurityScan"
    assert steps[-1]["Name"] == f"SmokeTests-{first}"
    deploys = [a for a in steps if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert deploys and steps[0]["RunOrder"] < min(a["RunOrder"] for a in deploys) < steps[-1]["RunOrder"]


def test_later_environments_need_approval(pipeline, cfg):
    _, props = pipeline
    for env_name in cfg.pipeline.promotion_order[1:]:
        steps = actions(props, env_name)
        assert steps[0]["ActionTypeId"]["Category"] == "Approval"
        assert steps[0]["RunOrder"] < min(
            a["RunOrder"] for a in steps if a["ActionTypeId"]["Provider"] == "CloudFormation"
        )
        assert steps[-1]["Name"] == f"SmokeTests-{env_name}"


@pytest.mark.parametrize("env_name", PROMOTION_ORDER)
def test_each_stage_deploys_into_its_own_account_and_region(pipeline, cfg, env_name):
    _, props = pipeline
    env = cfg.environments[env_name]
    deploys = [a for a in actions(props, env_name) if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    regions = {a.get("Region", cfg.organization.tooling_region) for a in deploys}
    assert env.region in regions and regions <= {env.region, env.dr_region, "us-east-1"}
    for action in deploys:
        role = json.dumps(action["RoleArn"])
        assert (
            f"cdk-hnb659fds-deploy-role-{env.account.id}-{action.get('Region', cfg.organization.tooling_region)}"
            in role
        )
        if "RoleArn" in action["Configuration"]:
            assert f"cdk-hnb659fds-cfn-exec-role-{env.account.id}" in json.dumps(action["Configuration"]["RoleArn"])
        assert action["Configuration"]["StackName"].startswith(f"{env_name}-")


def test_artifacts_encrypted_with_rotating_key_and_shared_cross_account(pipeline, cfg):
    t, props = pipeline
    stores = props.get("ArtifactStores") or [{"ArtifactStore": props["ArtifactStore"]}]
    assert all(s["ArtifactStore"]["EncryptionKey"]["Type"] == "KMS" for s in stores)
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    key_policies = json.dumps(t.find_resources("AWS::KMS::Key"))
    for env_name in cfg.pipeline.promotion_order:
        assert f":iam::{cfg.environments[env_name].account.id}:" in key_policies


def test_smoke_steps_assume_only_their_environment_role(pipeline, cfg):
    t, _ = pipeline
    policies = json.dumps(t.find_resources("AWS::IAM::Policy"))
    for env_name in cfg.pipeline.promotion_order:
        account = cfg.environments[env_name].account.id
        assert f"arn:aws:iam::{account}:role/{env_name}-smoke-tests" in policies


def test_failures_are_notified(pipeline, cfg):
    t, _ = pipeline
    t.has_resource_properties(
        "AWS::CodeStarNotifications::NotificationRule",
        {
            "EventTypeIds": [
                "codepipeline-pipeline-pipeline-execution-failed",
                "codepipeline-pipeline-manual-approval-needed",
                "codepipeline-pipeline-stage-execution-failed",
            ],
        },
    )
    t.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": cfg.organization.tooling.email}
    )


def test_pipeline_lives_in_the_tooling_account(assembly, cfg):
    stack = assembly.stack("pipeline")
    assert stack.account == cfg.organization.tooling.id and stack.region == cfg.organization.tooling_region


def test_security_scan_lists_images_with_only_what_its_step_installs(pipeline, tmp_path):
    """The scan step's build image gets PyYAML and nothing else of the project's requirements, then
    runs `python3 -m scripts.images`: the same command here, on a Python that sees the checkout and
    that one package (-S: no site-packages), must list the images."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from tests.conftest import ROOT

    t, _ = pipeline
    specs = [
        json.loads(p["Properties"]["Source"]["BuildSpec"])
        for p in t.find_resources("AWS::CodeBuild::Project").values()
        if "scripts.images" in p["Properties"]["Source"]["BuildSpec"]
    ]
    assert len(specs) == 1
    installs = [c for c in specs[0]["phases"]["install"]["commands"] if c.startswith("pip install")]
    pinned = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("PyYAML=="))
    assert installs == [f"pip install --quiet {pinned}"]
    only = tmp_path / "site"
    only.mkdir()
    for package in ("yaml", "_yaml"):
        (only / package).symlink_to(Path(yaml.__file__).parents[1] / package)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "app.yaml").write_text(
        "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: a:1\n"
    )
    listed = subprocess.run(
        [sys.executable, "-S", "-m", "scripts.images", str(manifests)],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{only}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["a:1"]
