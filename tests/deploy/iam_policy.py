"""A small evaluator of IAM policy statements, shared by the key-policy and SCP rules.

It implements the parts of IAM's policy evaluation the rehearsal needs
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
Action/NotAction and Resource/NotResource with wildcards, the String, Arn, Bool and Null
condition operators with their IfExists and negated forms
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html),
case-insensitive condition keys, and "an explicit Deny wins over any Allow". Principals are the
caller's business: key policies and SCPs name them differently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any


def listed(value: Any) -> list:
    """A policy element's value as a list (IAM allows a single value or a list)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# Memoized: a rehearsal asks about the same (pattern, action or ARN) pairs across statements,
# policies and principals, about a million times for a few ten thousand distinct pairs.
@cache
def wildcard(pattern: str, value: str, *, ignore_case: bool) -> bool:
    """IAM's `*` and `?` matching; `[` is literal in IAM, not a character class."""
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(wildcard(p, action, ignore_case=True) for p in listed(statement["NotAction"]))
    return any(wildcard(p, action, ignore_case=True) for p in listed(statement.get("Action")))


def resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not any(wildcard(p, resource, ignore_case=False) for p in listed(statement["NotResource"]))
    return any(wildcard(p, resource, ignore_case=False) for p in listed(statement.get("Resource", "*")))


_POSITIVE = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: wildcard(p, v, ignore_case=False),
    "ArnEquals": lambda p, v: wildcard(p, v, ignore_case=False),
    "ArnLike": lambda p, v: wildcard(p, v, ignore_case=False),
    "Bool": lambda p, v: p.lower() == v.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool | None:
    """True/False for one condition, or None for an operator this evaluator does not know.

    A key missing from the request makes a negated operator and any ...IfExists hold, and
    every other operator fail, as IAM documents.
    """
    operator = operator.split(":")[-1]  # ForAnyValue:/ForAllValues: act on the values below
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    actual = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if operator == "Null":
        return (actual is None) == (str(listed(expected)[0]).lower() == "true")
    if actual is None:
        return if_exists or operator in _NEGATED
    actual_values = [str(v) for v in listed(actual)]
    patterns = [str(p) for p in listed(expected)]
    if operator in _POSITIVE:
        return any(_POSITIVE[operator](p, v) for p in patterns for v in actual_values)
    if operator in _NEGATED:
        return not any(_POSITIVE[_NEGATED[operator]](p, v) for p in patterns for v in actual_values)
    return None


def conditions_hold(statement: Mapping[str, Any], context: Mapping[str, Any], *, unknown: bool) -> bool:
    """All conditions of a statement hold; an operator the evaluator does not know counts as `unknown`."""
    for operator, pairs in statement.get("Condition", {}).items():
        for key, expected in pairs.items():
            holds = condition_holds(operator, key, expected, context)
            if not (unknown if holds is None else holds):
                return False
    return True


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    context: Mapping[str, Any] = field(default_factory=dict)


def matches(statement: Mapping[str, Any], request: Request, *, unknown: bool) -> bool:
    return (
        action_matches(statement, request.action)
        and resource_matches(statement, request.resource)
        and conditions_hold(statement, request.context, unknown=unknown)
    )


def denied_by(statements: Iterable[Mapping[str, Any]], request: Request) -> str | None:
    """The Sid (or index) of the first Deny statement matching, an unknown condition counting as met."""
    for index, statement in enumerate(statements):
        if statement.get("Effect") == "Deny" and matches(statement, request, unknown=True):
            return statement.get("Sid", str(index))
    return None


def allowed_by(statements: Sequence[Mapping[str, Any]], request: Request) -> bool:
    """Some Allow matches (unknown conditions not met) and no Deny does."""
    if denied_by(statements, request) is not None:
        return False
    return any(s.get("Effect") == "Allow" and matches(s, request, unknown=False) for s in statements)
