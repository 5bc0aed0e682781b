"""A model of what the EKS API server serves while the kubectl provider applies a cloud assembly.

The platform's Kubernetes side reaches the cluster through three custom resources of
aws_eks_v2, all handled by one Lambda (aws-cdk-lib 2.275,
custom-resource-handlers/dist/aws-eks-v2/kubectl-handler in the jsii tarball):

- `Custom::AWSCDK-EKS-KubernetesResource` writes its `Manifest` (a JSON list) to a file and
  runs ONE `kubectl apply -f` over it (apply/__init__.py). kubectl retries only output that
  contains `i/o timeout`; any other error, such as "no matches for kind", fails the resource.
- `Custom::AWSCDK-EKS-HelmChart` runs `helm upgrade --install [--wait] [--timeout T] [--atomic]`
  (helm/__init__.py); Helm installs a chart's CRDs before its other objects and waits until
  they are served (https://helm.sh/docs/chart_best_practices/custom_resource_definitions/).
- `Custom::AWSCDK-EKS-KubernetesObjectValue` runs `kubectl get <type> <name> -o jsonpath=...`
  every 10 s until the output is non-empty or TimeoutSeconds pass (get/__init__.py): it is
  the only way to wait for something the cluster does asynchronously.

CloudFormation creates resources with no DependsOn/Ref path between them concurrently, so
an object may rely only on what an ancestor step made: `ApplyPlan.state_before(step)`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import kubernetes_validate
import networkx as nx
from jsonpath_ng.ext import parse as parse_jsonpath

from tests.deploy import helm
from tests.deploy.cloud_assembly import CloudAssembly, Stack

KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
HELM_CHART = "Custom::AWSCDK-EKS-HelmChart"
OBJECT_VALUE = "Custom::AWSCDK-EKS-KubernetesObjectValue"
STEP_TYPES = (KUBERNETES_RESOURCE, HELM_CHART, OBJECT_VALUE)
PLACEHOLDER = "CFN-TOKEN"

# https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#initial-namespaces
INITIAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

CRD_TYPES = frozenset(
    {
        "crd",
        "crds",
        "customresourcedefinition",
        "customresourcedefinitions",
        "customresourcedefinition.apiextensions.k8s.io",
    }
)
# Gatekeeper turns each ConstraintTemplate into the CRD `<kind lowercased>.constraints.gatekeeper.sh`
# serving the constraint kind, asynchronously, after the template has been stored
# (https://open-policy-agent.github.io/gatekeeper/website/docs/constrainttemplates).
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
CONSTRAINT_VERSIONS = ("v1", "v1beta1", "v1alpha1")

# The states a new CRD passes through before it serves (apiextensions-apiserver naming and
# establishing controllers, kubernetes/kubernetes staging/src/k8s.io/apiextensions-apiserver/pkg/
# controller/{status/naming_controller.go,establish/establishing_controller.go}): first no
# status, then names accepted with Established False ("Installing"), and only then
# Established True with reason InitialNamesAccepted.
CRD_PENDING_STATES: tuple[Mapping[str, Any], ...] = (
    {"status": {}},
    {
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": "False", "reason": "Installing"},
            ]
        }
    },
)
CRD_ESTABLISHED_STATE: Mapping[str, Any] = {
    "status": {
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
        ]
    }
}

Kind = tuple[str, str]  # (apiVersion, kind)
ChartObjects = Callable[["Step"], Sequence[Mapping[str, Any]]]


def resolve(value: Any) -> str:
    """A CloudFormation string value with every intrinsic but Fn::Join replaced by PLACEHOLDER."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(resolve(part) for part in parts)
    return PLACEHOLDER


def manifest_objects(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects of a KubernetesResource, as the handler's `json.loads(Manifest)` sees them."""
    objects = json.loads(resolve(resource["Properties"]["Manifest"]))
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise ValueError("Manifest is not a JSON list of objects")
    return objects


def kind_of(obj: Mapping[str, Any]) -> Kind:
    return obj["apiVersion"], obj["kind"]


@functools.cache
def builtin_kinds(kubernetes_version: str) -> frozenset[Kind]:
    """Every group/version/kind the Kubernetes OpenAPI schema of that version serves (kubernetes-validate)."""
    schemas = resources.files(kubernetes_validate).joinpath("kubernetes-json-schema")
    definitions = json.loads(schemas.joinpath(f"v{kubernetes_version}.0-local-strict", "_definitions.json").read_text())
    return frozenset(
        (f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"], gvk["kind"])
        for definition in definitions["$defs"].values()
        for gvk in definition.get("x-kubernetes-group-version-kind", ())
    )


def crd_served_kinds(crd: Mapping[str, Any]) -> set[Kind]:
    spec = crd["spec"]
    return {(f"{spec['group']}/{v['name']}", spec["names"]["kind"]) for v in spec["versions"] if v.get("served", True)}


def constraint_crd_name(kind: str) -> str:
    return f"{kind.lower()}.{CONSTRAINT_GROUP}"


@functools.cache
def waits_until_established(json_path: str) -> bool:
    """True when `kubectl get crd -o jsonpath={json_path}` stays empty until the CRD is Established.
    (Cached: every plan asks it of each wait once per later step, and parsing the path is the cost.)"""
    path = parse_jsonpath("$" + json_path)
    return not any(path.find(state) for state in CRD_PENDING_STATES) and bool(path.find(CRD_ESTABLISHED_STATE))


@dataclass(frozen=True)
class Step:
    """One kubectl-provider custom resource."""

    stack: Stack
    logical_id: str
    resource: Mapping[str, Any] = field(hash=False, compare=False)

    @property
    def type(self) -> str:
        return self.resource["Type"]

    @property
    def props(self) -> Mapping[str, Any]:
        return self.resource["Properties"]

    @property
    def name(self) -> str:
        return f"{self.stack.stack_name}/{self.logical_id}"

    @functools.cached_property
    def objects(self) -> list[dict[str, Any]]:
        return manifest_objects(self.resource) if self.type == KUBERNETES_RESOURCE else []

    @property
    def established_crd(self) -> str | None:
        """The CRD this step proves Established, when it is such a wait."""
        if (
            self.type == OBJECT_VALUE
            and self.props["ObjectType"].lower() in CRD_TYPES
            and waits_until_established(self.props["JsonPath"])
        ):
            return self.props["ObjectName"]
        return None


@dataclass(frozen=True)
class ClusterState:
    """What is guaranteed to exist when a step starts."""

    namespaces: frozenset[str]
    kinds: frozenset[Kind]


class ApplyPlan:
    """The kubectl-provider steps of one cluster (one stage) and their happens-before order."""

    def __init__(self, stacks: list[Stack], *, kubernetes_version: str, chart_objects: ChartObjects) -> None:
        self.kubernetes_version = kubernetes_version
        self.chart_objects = chart_objects
        self.stacks = {s.artifact_id: s for s in stacks}
        self.steps = [Step(s, lid, r) for s in stacks for lid, r in s.resources(*STEP_TYPES)]
        self._within: dict[tuple[str, str], set[str]] = {}
        for stack in stacks:
            graph = _resource_graph(stack)
            for step in self.steps:
                if step.stack is stack:
                    self._within[(stack.artifact_id, step.logical_id)] = nx.ancestors(graph, step.logical_id)
        stack_graph = nx.DiGraph()
        stack_graph.add_nodes_from(self.stacks)
        stack_graph.add_edges_from((d, s.artifact_id) for s in stacks for d in s.depends_on if d in self.stacks)
        self._stack_ancestors = {a: nx.ancestors(stack_graph, a) for a in self.stacks}

    @classmethod
    def per_cluster(cls, assembly: CloudAssembly) -> Iterator[ApplyPlan]:
        """One plan per stage that has an EKS cluster (each stage is one environment's cluster).

        A HelmChart's objects are its vendored chart rendered by `helm template` for the
        organization (the assembly's name) and environment (the stage's name).
        """
        by_stage: dict[str, list[Stack]] = {}
        for stack in assembly:
            by_stage.setdefault(stack.stage, []).append(stack)
        for stacks in by_stage.values():
            versions = {str(r["Properties"]["Version"]) for s in stacks for _, r in s.resources("AWS::EKS::Cluster")}
            if not versions or not any(True for s in stacks for _ in s.resources(*STEP_TYPES)):
                continue
            if len(versions) != 1:
                raise ValueError(f"one cluster per stage expected, found versions {sorted(versions)}")
            yield cls(
                stacks, kubernetes_version=versions.pop(), chart_objects=functools.partial(_rendered, assembly.name)
            )

    def before(self, first: Step, then: Step) -> bool:
        """True when CloudFormation finishes `first` before it starts `then`."""
        if first.stack.artifact_id == then.stack.artifact_id:
            return first.logical_id in self._within[(then.stack.artifact_id, then.logical_id)]
        return first.stack.artifact_id in self._stack_ancestors[then.stack.artifact_id]

    def ancestors(self, step: Step) -> list[Step]:
        return [s for s in self.steps if self.before(s, step)]

    def objects_of(self, step: Step) -> Sequence[Mapping[str, Any]]:
        """What a step creates: a manifest's objects or a Helm release's rendered objects."""
        return self.chart_objects(step) if step.type == HELM_CHART else step.objects

    def state_before(self, step: Step) -> ClusterState:
        done = self.ancestors(step)
        namespaces = set(INITIAL_NAMESPACES)
        kinds = set(builtin_kinds(self.kubernetes_version))
        templates: list[tuple[Step, str]] = []
        for s in done:
            for obj in self.objects_of(s):
                if obj["kind"] == "Namespace":
                    namespaces.add(obj["metadata"]["name"])
                elif obj["kind"] == "CustomResourceDefinition":
                    kinds |= crd_served_kinds(obj)
                elif obj["kind"] == "ConstraintTemplate":
                    templates.append((s, obj["spec"]["crd"]["spec"]["names"]["kind"]))
        for template_step, kind in templates:
            if any(w.established_crd == constraint_crd_name(kind) and self.before(template_step, w) for w in done):
                kinds |= {(f"{CONSTRAINT_GROUP}/{v}", kind) for v in CONSTRAINT_VERSIONS}
        return ClusterState(namespaces=frozenset(namespaces), kinds=frozenset(kinds))


def _rendered(organization: str, step: Step) -> Sequence[Mapping[str, Any]]:
    return helm.render_environment(organization, step.stack.stage)[step.props["Release"]]


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else target.split(".")[0]
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def _resource_graph(stack: Stack) -> nx.DiGraph:
    """Edges dependency -> dependent: DependsOn and Ref/Fn::GetAtt, the two things CloudFormation orders by
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html)."""
    graph = nx.DiGraph()
    resources_by_id = stack.resources_by_id
    graph.add_nodes_from(resources_by_id)
    for logical_id, resource in resources_by_id.items():
        depends_on = resource.get("DependsOn", [])
        for dependency in [depends_on] if isinstance(depends_on, str) else depends_on:
            graph.add_edge(dependency, logical_id)
        for dependency in _references(resource.get("Properties", {})):
            if dependency in resources_by_id:
                graph.add_edge(dependency, logical_id)
    return graph
