"""Gatekeeper policies, proven both ways with the Rego interpreter regopy.

Every template rejects a fixture that breaks its rule and admits a hardened one; the add-on charts'
workloads and the meshed Supabase Pods pass, judged as Gatekeeper would: only where its
Constraint's match (kinds, namespaces, exclusions) selects the object. The rendered templates and
constraints are also checked against schemas written from Gatekeeper's CRDs. The project's own
workloads are judged as deployed, with the Rego and parameters of the same assembly, by the
rehearsal rule k8s-gatekeeper-admits (tests/deploy/rules/cluster.py).
"""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from regopy import Input, Interpreter
from regopy.interpreter import Bundle

from config import yamlio
from config.loader import load_config
from k8s_charts import environment
from k8s_charts.mesh import istiod_helm_values
from k8s_charts.policies import POLICIES, SYSTEM_EXEMPTIONS, Policy, constraint, constraint_template, rego_module
from tests.conftest import ENVIRONMENTS
from tests.deploy import admission
from tests.kubernetes_schema import jsonschema_validate
from tests.rendered import manifests as rendered_manifests

# Evaluates every workload of every environment against every constraint's Rego.
pytestmark = pytest.mark.long

FIXTURES = Path(__file__).parent / "fixtures" / "gatekeeper"
POD_BEARING = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Rollout"}
SCHEMAS = yamlio.load((FIXTURES / "schemas.yaml").read_text())
BAD_CASES = yamlio.load((FIXTURES / "bad-cases.yaml").read_text())
BY_TEMPLATE = {p.template_name: p for p in POLICIES}


class Gatekeeper:
    """One regopy interpreter per template, queried the way Gatekeeper feeds a review.

    A verdict depends only on the template and the review it is fed, so each distinct pair is
    queried once: most workloads render the same in several environments."""

    def __init__(self) -> None:
        self._interpreters: dict[str, tuple[Interpreter, Bundle]] = {}
        self._verdicts: dict[tuple[str, str], list[str]] = {}
        for policy in POLICIES:
            interpreter = Interpreter()
            interpreter.add_module(policy.template_name, rego_module(policy))
            # Compiled once: a bundle query is several times faster than a fresh query.
            bundle = interpreter.build(f"found := data.{policy.template_name}.violation")
            self._interpreters[policy.template_name] = (interpreter, bundle)

    def violations(self, policy: Policy, obj: dict[str, Any]) -> list[str]:
        review = admission.review(obj, policy.constraint_parameters)
        key = (policy.template_name, json.dumps(review, sort_keys=True))
        if key not in self._verdicts:
            self._verdicts[key] = self._query(policy, review)
        return list(self._verdicts[key])

    def _query(self, policy: Policy, review: dict[str, Any]) -> list[str]:
        interpreter, bundle = self._interpreters[policy.template_name]
        interpreter.set_input(Input(review))
        results = interpreter.query_bundle(bundle).results
        assert len(results) == 1, f"{policy.template_name}: query gave {results}"
        found = results[0].bindings["found"]
        # A Rego v0 rule read by a v1 parser becomes an object, not a set: refuse it here.
        assert isinstance(found, list), f"{policy.template_name}: violation is not a set: {found!r}"
        return [v["msg"] for v in found]


@pytest.fixture(scope="module")
def gatekeeper() -> Gatekeeper:
    return Gatekeeper()


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, list[dict[str, Any]]]]:
    return {env: rendered_manifests(env) for env in ENVIRONMENTS}


def _namespace(obj: dict[str, Any]) -> str:
    return obj["metadata"].get("namespace", "default")


def _glob(pattern: str, namespace: str) -> bool:
    return fnmatch.fnmatchcase(namespace, pattern)


def selects(constraint_obj: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Gatekeeper's match semantics for the fields our constraints use (kinds, namespaces)."""
    match = constraint_obj["spec"]["match"]
    if not any(admission.group_of(obj) in k["apiGroups"] and obj["kind"] in k["kinds"] for k in match["kinds"]):
        return False
    namespace = _namespace(obj)
    if any(_glob(p, namespace) for p in match.get("excludedNamespaces", [])):
        return False
    return "namespaces" not in match or any(_glob(p, namespace) for p in match["namespaces"])


def _pointer(path: str) -> list[str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    return [int(p) if p.isdigit() else p for p in parts]


def apply_case(base: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for path, value in case.get("set", {}).items():
        *parents, last = _pointer(path)
        node = obj
        for key in parents:
            node = node[key]
        node[last] = value
    for path in case.get("delete", []):
        *parents, last = _pointer(path)
        node = obj
        for key in parents:
            node = node[key]
        del node[last]
    return obj


def good_deployment() -> dict[str, Any]:
    return yamlio.load((FIXTURES / "good-deployment.yaml").read_text())


def as_kind(deployment: dict[str, Any], kind: str) -> dict[str, Any]:
    """The same Pod template wrapped in another kind the constraints match."""
    template = copy.deepcopy(deployment["spec"]["template"])
    metadata = copy.deepcopy(deployment["metadata"])
    if kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {**metadata, **template["metadata"]},
            "spec": template["spec"],
        }
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": metadata,
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    api = {"Job": "batch/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Rollout": "argoproj.io/v1alpha1"}[kind]
    return {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": {"template": template}}


def workloads(manifests: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(chart, obj) for chart, objs in manifests.items() for obj in objs if obj.get("kind") in POD_BEARING]


def supabase_registered() -> bool:
    return any(f.__module__.startswith("k8s_charts.supabase") for f in environment.CHART_FACTORIES)


# --- templates are Rego v1, shipped where Gatekeeper reads v1 -------------------------------


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.template_name)
def test_template_ships_rego_v1_source(policy: Policy) -> None:
    target = constraint_template(policy)["spec"]["targets"][0]
    assert "rego" not in target, "the legacy `rego` field is parsed as Rego v0"
    (code,) = target["code"]
    assert code["engine"] == "Rego" and code["source"]["version"] == "v1"
    assert code["source"]["rego"].startswith(f"package {policy.template_name}\n")


def test_every_template_has_a_constraint_and_a_bad_case() -> None:
    assert {c["template"] for c in BAD_CASES} == set(BY_TEMPLATE)


# --- both ways on fixtures --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "Pod", "CronJob", "Job", "StatefulSet", "DaemonSet", "Rollout"])
def test_good_fixture_passes_every_template(gatekeeper: Gatekeeper, kind: str) -> None:
    obj = good_deployment() if kind == "Deployment" else as_kind(good_deployment(), kind)
    for policy in POLICIES:
        assert gatekeeper.violations(policy, obj) == [], policy.template_name


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c["id"])
def test_bad_fixture_is_rejected(gatekeeper: Gatekeeper, case: dict[str, Any]) -> None:
    bad = apply_case(good_deployment(), case)
    policy = BY_TEMPLATE[case["template"]]
    assert gatekeeper.violations(policy, bad), f"{case['id']} passed {policy.template_name}"
    others = [p.template_name for p in POLICIES if p is not policy and gatekeeper.violations(p, bad)]
    assert others == [], f"{case['id']} should break only {policy.template_name}, also broke {others}"


@pytest.mark.parametrize("kind", ["Pod", "CronJob"])
def test_pod_spec_is_found_in_every_kind(gatekeeper: Gatekeeper, kind: str) -> None:
    bad = as_kind(apply_case(good_deployment(), BAD_CASES[0]), kind)
    assert gatekeeper.violations(BY_TEMPLATE["k8spsshostisolation"], bad)


# --- the project's own manifests pass --------------------------------------------------------


def test_supabase_workloads_are_rendered(rendered) -> None:
    if not supabase_registered():
        pytest.skip("the Supabase chart is not in CHART_FACTORIES yet")
    for env, manifests in rendered.items():
        names = {o["metadata"]["name"] for _, o in workloads(manifests) if _namespace(o) == "supabase"}
        assert names, f"{env}: render_manifests returned no Supabase workloads"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_meshed_supabase_pods_pass_pod_admission(gatekeeper: Gatekeeper, rendered, cfg, env: str) -> None:
    """With Istio on, Pods reach Gatekeeper after sidecar injection: they must still pass."""
    if not cfg.environments[env].features.istio:
        pytest.skip("Istio is off in this environment")
    sidecar = yamlio.load((FIXTURES / "istio-sidecar-cni.yaml").read_text())
    resources = istiod_helm_values()["global"]["proxy"]["resources"]
    injected = [{**c, "resources": resources} for c in sidecar["initContainers"]]
    enforce = cfg.environments[env].features.gatekeeper_enforce
    pods = [
        as_kind(o, "Pod")
        for _, o in workloads(rendered[env])
        if _namespace(o) == "supabase" and "template" in o["spec"]
    ]
    if supabase_registered():
        assert pods
    failures = []
    for pod in pods:
        pod["spec"]["initContainers"] = pod["spec"].get("initContainers", []) + injected
        for policy in POLICIES:
            if selects(constraint(policy, enforce=enforce), pod):
                failures += gatekeeper.violations(policy, pod)
    assert failures == []


# --- constraints: action, exemptions, schema ---------------------------------------------------


def _policy_objects(manifests: dict[str, list[dict[str, Any]]]) -> tuple[list[dict], list[dict]]:
    objs = manifests["policies"]
    templates = [o for o in objs if o["kind"] == "ConstraintTemplate"]
    constraints = [o for o in objs if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    return templates, constraints


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_enforcement_follows_config(rendered, cfg, env: str) -> None:
    templates, constraints = _policy_objects(rendered[env])
    assert len(templates) == len(constraints) == len(POLICIES)
    expected = "deny" if cfg.environments[env].features.gatekeeper_enforce else "dryrun"
    assert {c["spec"]["enforcementAction"] for c in constraints} == {expected}
    assert {c["kind"] for c in constraints} == {t["spec"]["crd"]["spec"]["names"]["kind"] for t in templates}


def test_prod_denies(rendered) -> None:
    _, constraints = _policy_objects(rendered["prod"])
    assert all(c["spec"]["enforcementAction"] == "deny" for c in constraints)


def test_exemptions_are_explained_and_applied(rendered) -> None:
    _, constraints = _policy_objects(rendered["prod"])
    exempt = [e.namespace for e in SYSTEM_EXEMPTIONS]
    assert len(set(exempt)) == len(exempt)
    for exemption in SYSTEM_EXEMPTIONS + tuple(e for p in POLICIES for e in p.exemptions):
        assert len(exemption.reason.split()) >= 8, f"{exemption.namespace}: give a reason a reviewer can check"
    for c in constraints:
        assert set(exempt) <= set(c["spec"]["match"]["excludedNamespaces"])
        assert "supabase" not in c["spec"]["match"]["excludedNamespaces"]
    documented = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    for namespace in exempt:
        assert f"`{namespace}`" in documented, f"docs/security.md does not explain the {namespace} exemption"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_objects_match_gatekeeper_schema(rendered, env: str) -> None:
    templates, constraints = _policy_objects(rendered[env])
    schemas = {
        t["spec"]["crd"]["spec"]["names"]["kind"]: t["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]
        for t in templates
    }
    for template in templates:
        jsonschema_validate(template, SCHEMAS["constraintTemplate"])
    for c in constraints:
        jsonschema_validate(c, SCHEMAS["constraint"])
        # The API server prunes parameters the template does not declare: declare them all.
        strict = {**schemas[c["kind"]], "additionalProperties": False}
        jsonschema_validate(c["spec"].get("parameters", {}), strict)


@pytest.mark.parametrize(
    ("schema", "pointer", "typo"),
    [
        ("constraint", "/spec/enforcementAction", "enforcementActon"),
        ("constraint", "/spec/match/excludedNamespaces", "excludedNamespace"),
        ("constraint", "/spec/match/kinds/0/apiGroups", "apiGroup"),
        ("constraintTemplate", "/spec/targets/0/code/0/source/version", "verison"),
        ("constraintTemplate", "/spec/crd/spec/validation/openAPIV3Schema", "openAPIv3Schema"),
    ],
)
def test_schema_rejects_misspelt_field(schema: str, pointer: str, typo: str) -> None:
    policy = BY_TEMPLATE["k8sallowedimages"]
    obj = constraint(policy, enforce=True) if schema == "constraint" else constraint_template(policy)
    jsonschema.validate(obj, SCHEMAS[schema])
    *parents, last = _pointer(pointer)
    node = obj
    for key in parents:
        node = node[key]
    node[typo] = node.pop(last)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, SCHEMAS[schema])


def test_schema_rejects_wrong_enforcement_action() -> None:
    obj = constraint(POLICIES[0], enforce=False)
    obj["spec"]["enforcementAction"] = "audit"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, SCHEMAS["constraint"])


# --- the upstream charts' workloads, rendered by helm, under enforcement ------------------------


def test_chart_workloads_pass_their_constraints_in_deny_mode(gatekeeper: Gatekeeper) -> None:
    """Every workload of every add-on chart, every environment of both orgs, judged as if enforced."""
    from tests.deploy import helm

    failures: set[str] = set()
    judged = 0
    for org, env in helm.environments():
        for release, objects in helm.render_environment(org, env).items():
            namespace = next(a.namespace for a in helm.addons(org, env) if a.name == release)
            for rendered_obj in objects:
                if rendered_obj.get("kind") not in POD_BEARING:
                    continue
                # As installed: in the release's namespace unless the object names one (a copy,
                # so the session's rendering stays as helm printed it).
                metadata = {"namespace": namespace, **(rendered_obj.get("metadata") or {})}
                obj = {**rendered_obj, "metadata": metadata}
                for policy in POLICIES:
                    if selects(constraint(policy, enforce=True), obj):
                        judged += 1
                        failures |= {f"{release}: {msg}" for msg in gatekeeper.violations(policy, obj)}
    assert judged
    assert not failures, "\n".join(sorted(failures))


def test_named_exemption_covers_one_workload_in_one_namespace(gatekeeper: Gatekeeper) -> None:
    policy = BY_TEMPLATE["k8spsshostisolation"]
    bad = apply_case(good_deployment(), BAD_CASES[0])
    bad["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "prometheus-node-exporter"
    for namespace, rejected in (("observability", False), ("supabase", True)):
        obj = copy.deepcopy(bad)
        obj["metadata"]["namespace"] = namespace
        assert bool(gatekeeper.violations(policy, obj)) == rejected, namespace
    other = copy.deepcopy(bad)
    other["metadata"]["namespace"] = "observability"
    other["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "grafana"
    assert gatekeeper.violations(policy, other)


def test_root_is_admitted_for_the_log_agent_alone(gatekeeper: Gatekeeper) -> None:
    policy = BY_TEMPLATE["k8spssrunasnonroot"]
    root = good_deployment()
    root["spec"]["template"]["spec"]["containers"][0]["securityContext"].update({"runAsUser": 0, "runAsNonRoot": False})
    root["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "aws-for-fluent-bit"
    for namespace, rejected in (("observability", False), ("supabase", True)):
        obj = copy.deepcopy(root)
        obj["metadata"]["namespace"] = namespace
        assert bool(gatekeeper.violations(policy, obj)) == rejected, namespace
    other = copy.deepcopy(root)
    other["metadata"]["namespace"] = "observability"
    other["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "grafana"
    assert gatekeeper.violations(policy, other)
