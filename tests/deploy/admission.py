"""The cluster's admission of Pods: Pod Security Admission levels and the project's Gatekeeper constraints.

Both judge the Pods a workload creates. Pod Security Admission enforces the level of the
namespace's `pod-security.kubernetes.io/enforce` label on Pods (a refused Pod leaves its
ReplicaSet or Job stuck); Gatekeeper judges what its Constraints match. The checks read
only the cloud assembly: namespace labels, templates' Rego and constraints come from the
manifests that would be applied.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from regopy import Input, Interpreter

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

# Where each workload kind keeps the Pod template it creates Pods from.
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Rollout": ("spec", "template", "spec"),
}

# https://kubernetes.io/docs/concepts/security/pod-security-standards/ (v1.35), Baseline.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
BASELINE_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
# Restricted.
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
VOLUME_META_KEYS = frozenset({"name"})


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Pod spec a workload creates Pods from; None for non-workloads (and Rollouts using workloadRef)."""
    node: Any = obj
    for key in POD_SPEC_PATHS.get(obj.get("kind", ""), ("-",)):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key, [])


def _baseline(spec: Mapping[str, Any], annotations: Mapping[str, str]) -> Iterator[str]:
    pod_sc = spec.get("securityContext", {})
    if pod_sc.get("windowsOptions", {}).get("hostProcess"):
        yield "HostProcess pod"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"{key}: true"
    for volume in spec.get("volumes", []):
        if "hostPath" in volume:
            yield f"hostPath volume {volume.get('name')}"
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"unsafe sysctl {sysctl.get('name')}"
    for key, value in annotations.items():
        if (
            key.startswith("container.apparmor.security.beta.kubernetes.io/")
            and value != "runtime/default"
            and not value.startswith("localhost/")
        ):
            yield f"AppArmor annotation {key}={value}"
    for where, sc in [("pod", pod_sc), *((c.get("name"), c.get("securityContext", {})) for c in _containers(spec))]:
        if sc.get("appArmorProfile", {}).get("type", "RuntimeDefault") not in ("RuntimeDefault", "Localhost"):
            yield f"{where}: appArmorProfile {sc['appArmorProfile']['type']}"
        selinux = sc.get("seLinuxOptions", {})
        if selinux.get("type", "") not in BASELINE_SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            yield f"{where}: seLinuxOptions {selinux}"
        if sc.get("seccompProfile", {}).get("type") == "Unconfined":
            yield f"{where}: seccompProfile Unconfined"
        if where != "pod" and sc.get("windowsOptions", {}).get("hostProcess"):
            yield f"{where}: HostProcess container"
    for container in _containers(spec):
        name, sc = container.get("name"), container.get("securityContext", {})
        if sc.get("privileged"):
            yield f"{name}: privileged"
        added = set(sc.get("capabilities", {}).get("add", [])) - BASELINE_CAPABILITIES
        if added:
            yield f"{name}: adds capabilities {sorted(added)}"
        if any(p.get("hostPort") for p in container.get("ports", [])):
            yield f"{name}: hostPort"
        if sc.get("procMount", "Default") != "Default":
            yield f"{name}: procMount {sc['procMount']}"


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    pod_sc = spec.get("securityContext", {})
    windows = spec.get("os", {}).get("name") == "windows"
    for volume in spec.get("volumes", []):
        kinds = set(volume) - VOLUME_META_KEYS
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            yield f"volume {volume.get('name')} of type {sorted(kinds - RESTRICTED_VOLUME_TYPES)}"
    if pod_sc.get("runAsUser") == 0:
        yield "pod: runAsUser 0"
    for container in _containers(spec):
        name, sc = container.get("name"), container.get("securityContext", {})
        if not windows and sc.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation is not false"
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            yield f"{name}: runAsNonRoot is not true"
        if sc.get("runAsUser") == 0:
            yield f"{name}: runAsUser 0"
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if not windows and seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{name}: seccompProfile {seccomp or 'unset'}"
        if not windows:
            capabilities = sc.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []):
                yield f"{name}: capabilities do not drop ALL"
            if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
                yield f"{name}: adds capabilities beyond NET_BIND_SERVICE"


def pod_security_violations(obj: Mapping[str, Any], level: str) -> list[str]:
    """What the Pod Security Standards `level` refuses in the Pods `obj` creates
    (https://kubernetes.io/docs/concepts/security/pod-security-standards/)."""
    spec = pod_spec(obj)
    if spec is None or level == "privileged":
        return []
    template = obj if obj["kind"] == "Pod" else _template_of(obj)
    annotations = template.get("metadata", {}).get("annotations", {}) or {}
    found = list(_baseline(spec, annotations))
    if level == "restricted":
        found += list(_restricted(spec))
    elif level != "baseline":
        raise ValueError(f"unknown Pod Security level {level!r}")
    return found


def _template_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    path = POD_SPEC_PATHS[obj["kind"]][:-1]
    node: Any = obj
    for key in path:
        node = node[key]
    return node


def group_of(obj: Mapping[str, Any]) -> str:
    """The object's API group ("" for the core group)."""
    api_version = obj["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def review(obj: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The input Gatekeeper gives a template's Rego for a CREATE of `obj` under a constraint's parameters."""
    return {
        "review": {
            "object": obj,
            "kind": {"group": group_of(obj), "version": obj["apiVersion"].split("/")[-1], "kind": obj["kind"]},
            "namespace": obj["metadata"].get("namespace", "default"),
            "name": obj["metadata"].get("name", ""),
            "operation": "CREATE",
        },
        "parameters": parameters,
    }


class Gatekeeper:
    """The project's ConstraintTemplates and Constraints, evaluated the way Gatekeeper reviews an object
    (https://open-policy-agent.github.io/gatekeeper/website/docs/howto/: `input.review`,
    `input.parameters`; match by kinds, namespaces, excludedNamespaces)."""

    SUPPORTED_MATCH = frozenset({"kinds", "namespaces", "excludedNamespaces"})

    def __init__(self, templates: list[Mapping[str, Any]], constraints: list[Mapping[str, Any]]) -> None:
        self.constraints = constraints
        self._compiled: dict[str, tuple[Interpreter, Any]] = {}
        for template in templates:
            kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            [target] = template["spec"]["targets"]
            rego = next(c["source"]["rego"] for c in target["code"] if c["engine"] == "Rego")
            package = next(line.split()[1] for line in rego.splitlines() if line.startswith("package "))
            interpreter = Interpreter()
            interpreter.add_module(package, rego)
            self._compiled[kind] = (interpreter, interpreter.build(f"found := data.{package}.violation"))
        unknown = {c["kind"] for c in constraints} - set(self._compiled)
        if unknown:
            raise ValueError(f"constraints without a template: {sorted(unknown)}")

    def selects(self, constraint: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
        match = constraint["spec"].get("match", {})
        if set(match) - self.SUPPORTED_MATCH:
            raise ValueError(
                f"{constraint['metadata']['name']}: match fields {sorted(set(match) - self.SUPPORTED_MATCH)} "
                "are not modelled"
            )
        if not any(
            (group_of(obj) in k["apiGroups"] or "*" in k["apiGroups"])
            and (obj["kind"] in k["kinds"] or "*" in k["kinds"])
            for k in match.get("kinds", [{"apiGroups": ["*"], "kinds": ["*"]}])
        ):
            return False
        namespace = obj["metadata"].get("namespace", "default")
        if any(fnmatch.fnmatchcase(namespace, p) for p in match.get("excludedNamespaces", [])):
            return False
        return "namespaces" not in match or any(fnmatch.fnmatchcase(namespace, p) for p in match["namespaces"])

    def violations(self, obj: Mapping[str, Any]) -> list[str]:
        found = []
        for constraint in self.constraints:
            if not self.selects(constraint, obj):
                continue
            interpreter, bundle = self._compiled[constraint["kind"]]
            interpreter.set_input(Input(review(obj, constraint["spec"].get("parameters", {}))))
            [bindings] = interpreter.query_bundle(bundle).results
            found += [
                f"{constraint['kind']}/{constraint['metadata']['name']}: {v['msg']}" for v in bindings.bindings["found"]
            ]
        return found
