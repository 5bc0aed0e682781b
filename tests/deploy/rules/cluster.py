"""The cluster side of a deploy: the kubectl provider's steps replayed against a model of the API server.

Each KubernetesManifest, HelmChart and KubernetesObjectValue is a step; CloudFormation runs
steps with no dependency path between them concurrently, so a step may rely only on what
its ancestors made (tests/deploy/apiserver.py).
"""

from __future__ import annotations

import re

from tests.deploy.admission import ENFORCE_LABEL, Gatekeeper, pod_security_violations, pod_spec
from tests.deploy.apiserver import (
    CONSTRAINT_GROUP,
    HELM_CHART,
    KUBERNETES_RESOURCE,
    ApplyPlan,
    kind_of,
)
from tests.deploy.cloud_assembly import CloudAssembly
from tests.deploy.registry import Outcome, rule
from tests.deploy.rules.quotas import HANDLER_START_UP_SECONDS, LAMBDA_TIMEOUT_MAX_SECONDS

CATEGORY = "cluster"
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_seconds(text: str) -> int:
    """A Go duration as Helm's --timeout reads it (CDK renders e.g. "720s")."""
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"unreadable Helm timeout {text!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@rule("k8s-namespace-exists", category=CATEGORY)
def namespace_exists(assembly: CloudAssembly) -> Outcome:
    """A namespaced object can be created only in a namespace that already exists; kubectl apply of an
    object into a missing namespace fails with `namespaces "x" not found`, and the kubectl handler does
    not retry it (aws-eks-v2 kubectl-handler apply/__init__.py retries only "i/o timeout"). Helm without
    --create-namespace needs its release namespace too.
    https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html
    """
    outcome = Outcome()
    for plan in ApplyPlan.per_cluster(assembly):
        for step in plan.steps:
            existing = set(plan.state_before(step).namespaces)
            if step.type == HELM_CHART and not step.props.get("CreateNamespace"):
                namespace = step.props.get("Namespace", "default")
                outcome.check(
                    namespace in existing,
                    f"{step.name}: Helm release {step.props['Release']} installs into namespace {namespace}, "
                    "which no earlier step creates",
                )
            for obj in step.objects:
                namespace = obj["metadata"].get("namespace")
                if namespace is not None:
                    outcome.check(
                        namespace in existing,
                        f"{step.name}: {obj['kind']} {namespace}/{obj['metadata']['name']} is applied while "
                        f"namespace {namespace} is not guaranteed to exist (no dependency on the step creating it)",
                    )
                if obj["kind"] == "Namespace":
                    # kubectl applies a file's objects in order: later objects of the same manifest may use it.
                    existing.add(obj["metadata"]["name"])
    return outcome


@rule("k8s-kind-served", category=CATEGORY)
def kind_served(assembly: CloudAssembly) -> Outcome:
    """Every object's apiVersion/kind must be served when its manifest is applied: built-in kinds of the
    cluster's Kubernetes version, kinds of CRDs a HelmChart installed earlier, and Gatekeeper constraint
    kinds only after a KubernetesObjectValue has waited for the CRD Gatekeeper creates asynchronously from
    the ConstraintTemplate to be Established. kubectl resolves every object's kind before applying any, so
    a CRD in the same manifest does not serve its kind ("ensure CRDs are installed first"), and the kubectl
    handler does not retry "no matches for kind" (aws-eks-v2 kubectl-handler apply/__init__.py).
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition
    https://open-policy-agent.github.io/gatekeeper/website/docs/constrainttemplates
    """
    outcome = Outcome()
    for plan in ApplyPlan.per_cluster(assembly):
        for step in plan.steps:
            if step.type != KUBERNETES_RESOURCE:
                continue
            served = plan.state_before(step).kinds
            for obj in step.objects:
                api_version, kind = kind_of(obj)
                why = (
                    "Gatekeeper creates its CRD only after ingesting the ConstraintTemplate: split templates and "
                    "constraints and wait for the CRD to be Established"
                    if api_version.startswith(f"{CONSTRAINT_GROUP}/")
                    else "no earlier step installs a CRD serving it"
                )
                outcome.check(
                    (api_version, kind) in served,
                    f"{step.name}: {api_version} {kind} {obj['metadata'].get('name')} is not served when "
                    f"applied ({why})",
                )
    return outcome


@rule("helm-rollback-within-lambda", category=CATEGORY)
def helm_rollback_within_lambda(assembly: CloudAssembly) -> Outcome:
    """A HelmChart with Atomic runs `helm upgrade --install --atomic --wait --timeout T` in the kubectl
    provider's Lambda (aws-eks-v2 kubectl-handler helm/__init__.py). Helm 4 (the kubectl-v35 layer) reads
    --atomic as --rollback-on-failure: a failed upgrade is rolled back with the same wait strategy and
    timeout (helm pkg/action/upgrade.go failRelease: `rollin.Timeout = u.Timeout`), so the worst case is
    2T. The Lambda is stopped at its timeout mid-rollback, leaving the release pending-rollback, which
    blocks every later `helm upgrade`. (The single-attempt bound is lambda-timeout-covers-waits.)
    https://helm.sh/docs/helm/helm_upgrade/
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    """
    outcome = Outcome()
    for stack, logical_id, resource in assembly.resources(HELM_CHART):
        props = resource["Properties"]
        if str(props.get("Atomic", "false")).lower() != "true":
            continue
        worst = 2 * duration_seconds(props.get("Timeout", "5m0s")) + HANDLER_START_UP_SECONDS
        outcome.check(
            worst <= LAMBDA_TIMEOUT_MAX_SECONDS,
            f"{stack.stack_name}/{logical_id}: Helm release {props['Release']} may run {worst} s (install "
            f"plus rollback, each up to --timeout {props.get('Timeout')}, + {HANDLER_START_UP_SECONDS} s) but "
            f"the kubectl provider Lambda stops at {LAMBDA_TIMEOUT_MAX_SECONDS} s",
        )
    return outcome


@rule("k8s-pod-security-admits", category=CATEGORY)
def pod_security_admits(assembly: CloudAssembly) -> Outcome:
    """Pod Security Admission refuses a Pod that breaks the level of its namespace's
    `pod-security.kubernetes.io/enforce` label (no label: privileged). Every workload a KubernetesManifest
    applies must create Pods its namespace's level admits.
    https://kubernetes.io/docs/concepts/security/pod-security-admission/
    https://kubernetes.io/docs/concepts/security/pod-security-standards/
    """
    outcome = Outcome()
    for plan in ApplyPlan.per_cluster(assembly):
        objects = [(step, obj) for step in plan.steps for obj in step.objects]
        levels = {
            obj["metadata"]["name"]: (obj["metadata"].get("labels") or {}).get(ENFORCE_LABEL, "privileged")
            for _, obj in objects
            if obj["kind"] == "Namespace"
        }
        for step, obj in objects:
            if pod_spec(obj) is None:
                continue
            namespace = obj["metadata"].get("namespace", "default")
            level = levels.get(namespace, "privileged")
            refused = pod_security_violations(obj, level)
            outcome.check(
                not refused,
                f"{step.name}: {obj['kind']} {namespace}/{obj['metadata']['name']} is refused by "
                f"Pod Security {level}: {'; '.join(refused)}",
            )
    return outcome


@rule("k8s-gatekeeper-admits", category=CATEGORY)
def gatekeeper_admits(assembly: CloudAssembly) -> Outcome:
    """Every workload a KubernetesManifest applies must pass the project's own Gatekeeper constraints (as
    deployed: the Rego and parameters in the same assembly), whatever their enforcementAction: `deny`
    refuses it, `dryrun` reports it in the audit and refuses it once enforcement is switched on.
    https://open-policy-agent.github.io/gatekeeper/website/docs/howto/
    https://open-policy-agent.github.io/gatekeeper/website/docs/violations/
    """
    outcome = Outcome()
    for plan in ApplyPlan.per_cluster(assembly):
        objects = [(step, obj) for step in plan.steps for obj in step.objects]
        templates = [obj for _, obj in objects if obj["kind"] == "ConstraintTemplate"]
        constraints = [obj for _, obj in objects if obj["apiVersion"].startswith(f"{CONSTRAINT_GROUP}/")]
        if not constraints:
            continue
        gatekeeper = Gatekeeper(templates, constraints)
        for step, obj in objects:
            if pod_spec(obj) is None:
                continue
            refused = gatekeeper.violations(obj)
            outcome.check(
                not refused,
                f"{step.name}: {obj['kind']} {obj['metadata'].get('namespace', 'default')}/"
                f"{obj['metadata']['name']} breaks {'; '.join(refused)}",
            )
    return outcome
