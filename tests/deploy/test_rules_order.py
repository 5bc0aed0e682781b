"""Each order rule fails on a broken fixture: a pre-bootstrap stack that needs the bootstrap
bucket, an importer that deploys before its exporter, accounts created in parallel."""

from __future__ import annotations

import tests.deploy.rules  # noqa: F401  (registers the rules)
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.registry import RULES
from tests.deploy.rules.order import README, check_journey, journey

STEPS = """## From nothing to a running platform

1. **Organization.** enable things.
2. **Deploy the organization:** `make deploy ENV=org`.
3. **Execution policies:** `make deploy ENV=<env>-deploy-access`.
4. **Bootstrap:** `make bootstrap`.
5. **Pipeline:** `make deploy ENV=pipeline`.

## Next
"""
TOPIC = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
BOOTSTRAPPED = {
    "stackTemplateAssetObjectUrl": "s3://cdk-hnb659fds-assets-1-us-east-1/t.json",
    "requiresBootstrapStackVersion": 6,
    "assumeRoleArn": "arn:aws:iam::1:role/cdk-hnb659fds-deploy-role",
}


def test_readme_journey_is_parsed():
    steps = journey(README.read_text())
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    assert sum(s.bootstraps for s in steps) == 1
    assert any("org" in s.deploys for s in steps) and any("<env>-deploy-access" in s.deploys for s in steps)


def test_text_after_the_last_step_is_not_part_of_it():
    trailing = STEPS.replace("\n\n## Next", "\n\nDay to day: `make deploy ENV=dev`, after `make bootstrap`.\n\n## Next")
    last = journey(trailing)[-1]
    assert last.deploys == ("pipeline",) and not last.bootstraps


def test_stacks_before_bootstrap_must_not_need_it():
    steps = journey(STEPS)
    templates = {"org": TOPIC, "dev-deploy-access": TOPIC, "pipeline": TOPIC, "cross-region-support": TOPIC}
    fine = {"pipeline": {"properties": BOOTSTRAPPED, "depends_on": ("cross-region-support",)}}
    assert not check_journey(CloudAssembly.from_templates(templates, **fine), steps).findings
    uploaded = {**fine, "dev-deploy-access": {"properties": {"stackTemplateAssetObjectUrl": "s3://cdk-assets/t.json"}}}
    findings = check_journey(CloudAssembly.from_templates(templates, **uploaded), steps).findings
    assert len(findings) == 1 and "step 3" in findings[0] and "bootstrap bucket" in findings[0]
    asset = {"Resources": {"F": {"Type": "AWS::Lambda::Function", "Metadata": {"aws:asset:path": "asset.abc"}}}}
    findings = check_journey(CloudAssembly.from_templates({**templates, "org": asset}, **fine), steps).findings
    assert len(findings) == 1 and "assets" in findings[0]


def test_every_top_level_stack_has_a_step_and_stage_stacks_use_the_pipeline():
    steps = journey(STEPS)
    orphan = check_journey(CloudAssembly.from_templates({"org": TOPIC, "forgotten": TOPIC}), steps).findings
    assert orphan == ["forgotten: no README step deploys it (`make deploy ENV=forgotten`)"]
    cli_stage = CloudAssembly.from_templates({"org": TOPIC, "devnetwork": TOPIC}, devnetwork={"stage": "dev"})
    assert "no bootstrap deploy role" in check_journey(cli_stage, steps).findings[0]
    no_bootstrap = journey(STEPS.replace("`make bootstrap`", "bootstrap by hand"))
    assert (
        "no `make bootstrap` step"
        in check_journey(CloudAssembly.from_templates({"org": TOPIC}), no_bootstrap).findings[0]
    )


def cross_region(consumer_depends_on: tuple[str, ...], writer_region: str = "us-east-1") -> CloudAssembly:
    name = "/cdk/exports/data/drArn"
    writer = {
        "Resources": {
            "W": {
                "Type": "Custom::CrossRegionExportWriter",
                "Properties": {
                    "WriterProps": {"region": writer_region, "exports": {name: {"Fn::GetAtt": ["Key", "Arn"]}}}
                },
            }
        }
    }
    reader = {
        "Resources": {
            "R": {
                "Type": "Custom::CrossRegionExportReader",
                "Properties": {
                    "ReaderProps": {"region": "us-east-1", "prefix": "data", "imports": {name: "{{resolve:ssm:x}}"}}
                },
            }
        }
    }
    return CloudAssembly.from_templates(
        {"dr": writer, "data": reader}, dr={"region": "us-west-2"}, data={"depends_on": consumer_depends_on}
    )


def test_cross_region_importer_deploys_after_the_writer_in_its_region():
    assert not RULES["cross-region-exports-first"](cross_region(("dr",))).findings
    assert "does not deploy after" in RULES["cross-region-exports-first"](cross_region(())).findings[0]
    assert "no stack writes" in RULES["cross-region-exports-first"](cross_region(("dr",), "eu-west-1")).findings[0]


def test_import_value_needs_the_exporter_first():
    exporter = {"Resources": {}, "Outputs": {"O": {"Value": "v", "Export": {"Name": "net:Vpc"}}}}
    importer = {
        "Resources": {"S": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"VpcId": {"Fn::ImportValue": "net:Vpc"}}}}
    }
    ordered = CloudAssembly.from_templates({"net": exporter, "app": importer}, app={"depends_on": ("net",)})
    assert not RULES["cross-stack-exports-first"](ordered).findings
    unordered = CloudAssembly.from_templates({"net": exporter, "app": importer})
    assert "does not deploy first" in RULES["cross-stack-exports-first"](unordered).findings[0]
    elsewhere = CloudAssembly.from_templates(
        {"net": exporter, "app": importer}, net={"region": "eu-west-1"}, app={"depends_on": ("net",)}
    )
    assert "no stack in its account and region" in RULES["cross-stack-exports-first"](elsewhere).findings[0]


def test_accounts_of_one_template_are_chained():
    def accounts(depends: dict[str, list[str]]) -> CloudAssembly:
        return CloudAssembly.from_templates(
            {
                "org": {
                    "Resources": {
                        name: {"Type": "AWS::Organizations::Account", "DependsOn": deps}
                        for name, deps in depends.items()
                    }
                }
            }
        )

    assert not RULES["organizations-accounts-sequential"](accounts({"A": [], "B": ["A"], "C": ["B"]})).findings
    findings = RULES["organizations-accounts-sequential"](accounts({"A": [], "B": ["A"], "C": ["A"]})).findings
    assert findings and "B and C" in findings[0]
