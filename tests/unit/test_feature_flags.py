"""Release flags: AppConfig feature-flag profile per environment, deployed gradually."""

import json

import pytest

from stacks.feature_flags_stack import flags_document
from tests.conftest import ENVIRONMENTS


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_flags_from_config_are_deployed(template, cfg, env_name):
    t = template(env_name, "flags")
    t.has_resource_properties(
        "AWS::AppConfig::ConfigurationProfile",
        {"Name": "release-flags", "Type": "AWS.AppConfig.FeatureFlags", "LocationUri": "hosted"},
    )
    (version,) = t.find_resources("AWS::AppConfig::HostedConfigurationVersion").values()
    content = json.loads(version["Properties"]["Content"])
    assert content["values"] == {k: {"enabled": v} for k, v in cfg.environments[env_name].release_flags.items()}
    assert set(content["flags"]) == set(cfg.environments[env_name].release_flags)
    t.resource_count_is("AWS::AppConfig::Deployment", 1)


def test_prod_rolls_out_slower_than_dev(template):
    def strategy(env_name):
        (s,) = template(env_name, "flags").find_resources("AWS::AppConfig::DeploymentStrategy").values()
        return s["Properties"]

    prod, dev = strategy("prod"), strategy("dev")
    assert prod["GrowthType"] == "LINEAR" and prod["GrowthFactor"] == 20
    assert prod["DeploymentDurationInMinutes"] > dev["DeploymentDurationInMinutes"]
    assert prod["FinalBakeTimeInMinutes"] > dev["FinalBakeTimeInMinutes"]


def test_flags_document_shape():
    doc = flags_document({"b_flag": False, "a_flag": True})
    assert doc == {
        "version": "1",
        "flags": {"a_flag": {"name": "a_flag"}, "b_flag": {"name": "b_flag"}},
        "values": {"a_flag": {"enabled": True}, "b_flag": {"enabled": False}},
    }


def test_flag_names_are_validated(cfg):
    from config import ConfigError, parse_config

    raw = json.loads(cfg.model_dump_json())
    raw["environments"]["dev"]["release_flags"] = {"Bad-Flag": True}
    with pytest.raises(ConfigError, match=r"environments\.dev\.release_flags: 'Bad-Flag' given; .* fix: rename it"):
        parse_config(raw)
