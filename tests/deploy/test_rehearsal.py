"""Runs every registered rule over every organization's assembly; none may find anything."""

from __future__ import annotations

import pytest

import tests.deploy.rules  # noqa: F401  (registers the rules)
from tests.deploy.registry import RULES

# It synthesizes the second organization, which a dozen files read: started first, no worker waits for it.
pytestmark = pytest.mark.long

_COVERAGE: dict[str, int] = {}


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_rule_holds(rule_id, cloud_assembly, report):
    outcome = RULES[rule_id](cloud_assembly)
    assert outcome.checked > 0, f"{rule_id} examined nothing in {cloud_assembly.name}: the rule is blind"
    _COVERAGE[f"{rule_id}@{cloud_assembly.name}"] = outcome.checked
    rules = {key.split("@")[0] for key in _COVERAGE}
    report(
        "deploy rehearsal",
        f"{len(rules)} rules applied, {sum(_COVERAGE.values())} checks over "
        f"{len({key.split('@')[1] for key in _COVERAGE})} organizations",
    )
    assert not outcome.findings, f"{rule_id} ({RULES[rule_id].category}) in {cloud_assembly.name}:\n" + "\n".join(
        outcome.findings
    )
