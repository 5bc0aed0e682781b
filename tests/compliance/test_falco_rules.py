"""Falco rules and the falco Helm values, checked offline.

yamllint reads the rule file as committed and as rendered for each environment; a schema
written from Falco's rule format checks every item; a small condition reader proves that every
macro and list a condition names is defined here or is one of the few default-ruleset macros
we declare. Each check is shown to refuse a bad rules file (fixtures/falco/bad-rules.yaml).
"""

from __future__ import annotations

import ipaddress
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from yamllint import linter
from yamllint.config import YamlLintConfig

from config import yamlio
from config.loader import load_config
from k8s_charts import falco
from k8s_charts.aws_values import from_config
from tests.conftest import ENVIRONMENTS

FIXTURES = Path(__file__).parent / "fixtures" / "falco"
SCHEMA = yamlio.load((FIXTURES / "rules-schema.yaml").read_text())
BAD_RULES = yamlio.load((FIXTURES / "bad-rules.yaml").read_text())
YAMLLINT = YamlLintConfig(
    "extends: default\n"
    "rules:\n"
    "  line-length: {max: 120}\n"
    # PyYAML writes block sequences flush with their key; both styles are valid YAML.
    "  indentation: {spaces: consistent, indent-sequences: whatever}\n"
)

BINARY_OPERATORS = {
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "pmatch",
    "in",
    "intersects",
    "regex",
}
TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<open>\() | (?P<close>\)) | (?P<comma>,)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<word>[^\s(),=<>!"']+)
    )""",
    re.VERBOSE,
)


def tokens(condition: str) -> list[tuple[str, str]]:
    found, pos = [], 0
    condition = condition.strip()
    while pos < len(condition):
        m = TOKEN.match(condition, pos)
        assert m and m.end() > pos, f"cannot read condition at: {condition[pos:]!r}"
        found.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return found


def references(condition: str) -> tuple[set[str], set[str]]:
    """(macro names, value-list words) a condition uses.

    A bare word where an expression may start is a macro; a word inside the parentheses
    after `in`/`intersects`/`pmatch` is a list name or a literal, as Falco decides by lookup.
    Field names always contain a dot.
    """
    macros: set[str] = set()
    list_words: set[str] = set()
    toks = tokens(condition)
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        if kind == "op" or (kind == "word" and text in BINARY_OPERATORS):
            i += 1
            if toks[i][0] == "open":
                i += 1
                while toks[i][0] != "close":
                    if toks[i][0] == "word":
                        list_words.add(toks[i][1])
                    i += 1
        elif kind == "word" and text not in {"and", "or", "not", "exists"} and "." not in text:
            macros.add(text)
        i += 1
    return macros, list_words


def check_references(items: list[dict[str, Any]]) -> list[str]:
    lists = {i["list"] for i in items if "list" in i} | set(falco.DEFAULT_RULESET_LISTS)
    macros = {i["macro"] for i in items if "macro" in i} | set(falco.DEFAULT_RULESET_MACROS)
    problems = []
    for item in items:
        if "condition" not in item:
            continue
        name = item.get("rule") or item.get("macro")
        used_macros, list_words = references(item["condition"])
        problems += [f"{name}: macro {m} is not defined" for m in sorted(used_macros - macros)]
        # Our literals never contain "_": such a word must be a list, so a typo cannot pass
        # as a literal that silently never matches.
        problems += [f"{name}: list {w} is not defined" for w in sorted(list_words) if "_" in w and w not in lists]
    return problems


def lint(text: str) -> list[str]:
    return [f"{p.line}:{p.column} {p.message}" for p in linter.run(text, YAMLLINT) if p.level == "error"]


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def committed_text() -> str:
    return resources.files(falco).joinpath("supabase_rules.yaml").read_text(encoding="utf-8")


def test_committed_rule_file_passes_yamllint() -> None:
    assert lint(committed_text()) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendered_rules_pass_every_check(cfg, env: str) -> None:
    vpc = str(cfg.environments[env].network.vpc_cidr)
    text = falco.rules_yaml(vpc)
    assert lint(text) == []
    items = yamlio.load(text)
    jsonschema.validate(items, SCHEMA)
    assert check_references(items) == []
    cidrs = next(i["items"] for i in items if i.get("list") == "supabase_vpc_cidrs")
    assert [ipaddress.ip_network(c.strip('"')) for c in cidrs] == [cfg.environments[env].network.vpc_cidr]


def test_every_definition_is_used() -> None:
    items = falco.rules("10.0.0.0/16")
    used: set[str] = set()
    for item in items:
        if "condition" in item:
            macros, list_words = references(item["condition"])
            used |= macros | list_words
    defined = {i.get("list") or i.get("macro") for i in items if "list" in i or "macro" in i}
    assert defined - used == set()
    assert set(falco.DEFAULT_RULESET_MACROS) <= used, "drop default-ruleset macros no rule uses"


def test_rules_cover_the_required_detections() -> None:
    rules = {i["rule"]: i for i in falco.rules("10.0.0.0/16") if "rule" in i}
    conditions = " ".join(r["condition"] for r in rules.values())
    for needed in (
        "supabase_shell_binaries",
        "supabase_binary_dirs",
        "supabase_credential_file",
        "supabase_db_facing_components",
        "supabase_package_managers",
    ):
        assert needed in conditions, needed
    assert all(name.startswith("Supabase ") for name in rules)


@pytest.mark.parametrize("case", BAD_RULES, ids=lambda c: c["id"])
def test_checks_reject_bad_rules(case: dict[str, Any]) -> None:
    if case["check"] == "schema":
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(case["rules"], SCHEMA)
    else:
        jsonschema.validate(case["rules"], SCHEMA)
        assert check_references(case["rules"]), case["why"]


def test_yamllint_rejects_broken_yaml() -> None:
    assert lint(committed_text().replace("  items: [pgbouncer, realtime]", "  items: [pgbouncer, realtime]\n   bad: x"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_values(cfg, env: str) -> None:
    values = from_config(cfg, env)
    helm = falco.helm_values(values)
    assert helm["driver"]["kind"] == "modern_ebpf"
    assert yamlio.load(helm["customRules"][falco.RULES_FILE]) == falco.rules(values.vpc_cidr)
    sidekick = helm["falcosidekick"]
    assert sidekick["enabled"] is True
    assert "fullnameOverride" not in sidekick, "the falco chart's http_output URL assumes the default name"
    aws = sidekick["config"]["aws"]
    assert aws["sns"]["topicarn"] == values.alerts_topic_arn
    assert aws["region"] == values.region
    assert aws["sns"]["minimumpriority"] in {"emergency", "alert", "critical", "error", "warning", "notice"}
    # Pod Identity, not IRSA: no role annotation may be rendered on the service account.
    assert aws["useirsa"] is False and "rolearn" not in aws
