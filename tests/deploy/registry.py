"""The rehearsal's rule registry: each rule is a documented AWS or Kubernetes constraint.

A rule is a function `(CloudAssembly) -> Outcome` registered with `@rule(...)`. Its
docstring cites the documentation it encodes. `Outcome.checked` counts the resources (or
objects, or stacks) it examined, so the run can say how much it covered; `findings` are the
violations, each one line naming the stack, the resource and what AWS would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.deploy.cloud_assembly import CloudAssembly


@dataclass
class Outcome:
    checked: int = 0
    findings: list[str] = field(default_factory=list)

    def check(self, ok: bool, finding: str) -> None:
        """Counts one examined item; records `finding` when it is not ok."""
        self.checked += 1
        if not ok:
            self.findings.append(finding)


RuleFn = Callable[[CloudAssembly], Outcome]


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    fn: RuleFn

    @property
    def source(self) -> str:
        return (self.fn.__doc__ or "").strip()

    def __call__(self, assembly: CloudAssembly) -> Outcome:
        return self.fn(assembly)


RULES: dict[str, Rule] = {}


def rule(rule_id: str, *, category: str) -> Callable[[RuleFn], RuleFn]:
    """Registers a rule. Its docstring must cite the AWS or Kubernetes documentation."""

    def register(fn: RuleFn) -> RuleFn:
        if rule_id in RULES:
            raise ValueError(f"duplicate rule id {rule_id}")
        if not fn.__doc__ or "http" not in fn.__doc__:
            raise ValueError(f"rule {rule_id} needs a docstring citing its source (a URL)")
        RULES[rule_id] = Rule(id=rule_id, category=category, fn=fn)
        return fn

    return register
