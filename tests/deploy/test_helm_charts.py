"""The vendored upstream charts, rendered by real helm with the project's values, per environment.

helm ignores values a chart never reads, so a misplaced key (placement, a renamed option) is a
silent no-op: every key the project sets must exist in the chart's values.yaml (subcharts under
their name), sit below a map the chart documents as free-form, or be read by its templates.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from config import yamlio
from constructs_lib.addons import HelmAddon
from constructs_lib.addons.base import CHARTS_DIR
from tests import kubernetes_schema
from tests.deploy import helm

ENVIRONMENTS = helm.environments()
SOURCES = yamlio.load((CHARTS_DIR / "SOURCES.yaml").read_text())["charts"]
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
# Maps the charts pass through unchanged (toYaml or one flag per key): any key below is theirs to read.
FREE_FORM = {
    ("cluster-autoscaler", "extraArgs"): "rendered as one --key=value flag per entry (templates/deployment.yaml)",
}
# Kubernetes API fields the charts pass through with toYaml: their keys belong to Kubernetes.
KUBERNETES_FIELDS = {
    "nodeSelector",
    "annotations",
    "podAnnotations",
    "labels",
    "podLabels",
    "resources",
    "securityContext",
    "podSecurityContext",
    "containerSecurityContext",
}


def _env_id(case: tuple[str, str]) -> str:
    return "-".join(case)


@cache
def chart_defaults(chart_dir: Path) -> dict[str, Any]:
    """values.yaml with each subchart's defaults under its name (or alias), as helm coalesces them."""
    values = yamlio.load((chart_dir / "values.yaml").read_text()) or {}
    # Istio's charts keep their defaults under this key and merge it to the top in zzz_profile.yaml.
    values = {**(values.pop("_internal_defaults_do_not_set", None) or {}), **values}
    legacy = chart_dir / "templates" / "zzy_descope_legacy.yaml"
    if legacy.is_file():
        # istiod merges `pilot.*` (the pre-1.24 layout) onto the top level.
        for alias in re.findall(r'mustMergeOverwrite \$\.Values \(index \$\.Values "(\w+)"\)', legacy.read_text()):
            values[alias] = dict(values)
    for dep in yamlio.load((chart_dir / "Chart.yaml").read_text()).get("dependencies") or []:
        key = dep.get("alias") or dep["name"]
        values[key] = {**chart_defaults(chart_dir / "charts" / dep["name"]), **(values.get(key) or {})}
    return values


@cache
def template_text(chart_dir: Path) -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for p in sorted(chart_dir.rglob("*"))
        if p.is_file()
        and p.suffix in {".yaml", ".tpl", ".txt"}
        and p.name != "values.yaml"
        and ("templates" in p.parts or "files" in p.parts)
    )


def _read_by_templates(chart_dir: Path, path: str) -> bool:
    text = template_text(chart_dir)
    *parents, leaf = path.split(".")
    return f".Values.{path}" in text or (not parents and f'hasKey .Values "{leaf}"' in text)


def unread_keys(addon: HelmAddon) -> list[str]:
    """Dotted paths of the add-on's values that the chart (with its subcharts) never reads."""
    found: list[str] = []

    def walk(ours: dict[str, Any], defaults: Any, path: str) -> None:
        for key, value in ours.items():
            where = f"{path}.{key}" if path else key
            if (addon.name, where) in FREE_FORM or defaults == {} or path.rsplit(".", 1)[-1] in KUBERNETES_FIELDS:
                continue
            if isinstance(defaults, dict) and key in defaults:
                if isinstance(value, dict) and isinstance(defaults[key], dict):
                    walk(value, defaults[key], where)
            elif not _read_by_templates(addon.chart_dir, where):
                found.append(where)

    walk(dict(addon.values), chart_defaults(addon.chart_dir), "")
    return found


def images(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(object/container, image) of every container, init container included."""
    found = []
    for obj in objects:
        if obj.get("kind") not in POD_KINDS:
            continue
        spec = obj["spec"]
        spec = spec.get("jobTemplate", {}).get("spec", spec)
        pod = spec.get("template", {}).get("spec", spec)
        # `initContainers: null` is what a chart renders for an empty list (opencost); the API server reads it as none.
        for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            found.append((f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}", container["image"]))
    return found


def unpinned(image: str) -> bool:
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.endswith(":latest") or last.endswith(":")


# --- vendored charts are the pinned ones --------------------------------------------------------


def test_sources_record_every_vendored_chart() -> None:
    recorded = {s["dir"] for s in SOURCES}
    top = {p.name for p in CHARTS_DIR.iterdir() if p.is_dir()}
    assert top <= recorded
    for source in SOURCES:
        assert (CHARTS_DIR / source["dir"] / "Chart.yaml").is_file(), source["dir"]
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and source["repo"].startswith("https://github.com/")
    for parent in top:
        chart = yamlio.load((CHARTS_DIR / parent / "Chart.yaml").read_text())
        for dep in chart.get("dependencies") or []:
            # Dependencies without a repository ship inside the parent's own source.
            if dep.get("repository"):
                assert f"{parent}/charts/{dep['name']}" in recorded, f"{parent}: {dep['name']} not recorded"


def test_every_vendored_file_is_committed() -> None:
    # Upstream charts carry their own .gitignore (several ignore `charts/`, where subcharts
    # live): a file missing from git is missing from every clone, CI's and the pipeline's.
    if not (CHARTS_DIR.parent / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = set(
        subprocess.run(
            ["git", "ls-files", "-z", CHARTS_DIR.name],
            cwd=CHARTS_DIR.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\0")
    )
    on_disk = {p.relative_to(CHARTS_DIR.parent).as_posix() for p in CHARTS_DIR.rglob("*") if p.is_file()}
    untracked = sorted(f for f in on_disk - tracked if "__pycache__" not in f)
    assert not untracked, untracked[:10]


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_every_addon_installs_its_pinned_chart(case: tuple[str, str]) -> None:
    by_dir = {s["dir"]: s for s in SOURCES}
    for addon in helm.addons(*case):
        chart = yamlio.load((addon.chart_dir / "Chart.yaml").read_text())
        source = by_dir[addon.chart_dir.name]
        assert chart["name"] == addon.chart
        # Istio stamps versions at publish time: its source charts say 1.0.0, the tag is the pin.
        assert addon.version in (str(chart["version"]), source["ref"]), addon.name
        for dep in chart.get("dependencies") or []:
            assert (addon.chart_dir / "charts" / dep["name"] / "Chart.yaml").is_file(), f"{addon.name}: {dep['name']}"


def test_vendored_charts_stay_small() -> None:
    size = sum(p.stat().st_size for p in CHARTS_DIR.rglob("*") if p.is_file())
    assert size < 32 * 2**20, f"charts/ is {size / 2**20:.1f} MiB: vendor chart directories, not repositories"


# --- rendered with the project's values --------------------------------------------------------


def test_helm_is_the_kubectl_layers() -> None:
    out = helm._run("version", "--short")
    assert out.startswith("v4."), out


def test_render_error_is_reported() -> None:
    broken = HelmAddon(
        name="istio-cni", chart="cni", version="1.30.3", namespace="istio-system", values={"profile": "default"}
    )
    with pytest.raises(helm.HelmError, match="unknown profile"):
        helm.render(broken, kube_version="1.35")


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_charts_render(case: tuple[str, str], report) -> None:
    rendered = helm.render_environment(*case)
    for release, objects in rendered.items():
        assert objects, f"{release} rendered nothing"
    totals = [(org, env, helm.render_environment(org, env)) for org, env in ENVIRONMENTS]
    report(
        "helm charts",
        f"{len({a.chart_dir for o, e in ENVIRONMENTS for a in helm.addons(o, e)})} vendored charts "
        f"rendered for {len(totals)} environments ({sum(len(r) for *_, r in totals)} releases), "
        f"{sum(len(objs) for *_, r in totals for objs in r.values())} objects",
    )


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_every_value_is_read_by_its_chart(case: tuple[str, str]) -> None:
    unread = {a.name: unread_keys(a) for a in helm.addons(*case)}
    assert {k: v for k, v in unread.items() if v} == {}


def test_unread_value_is_reported() -> None:
    addon = next(a for a in helm.addons(*ENVIRONMENTS[0]) if a.name == "gatekeeper")
    misplaced = HelmAddon(
        name=addon.name,
        chart=addon.chart,
        version=addon.version,
        namespace=addon.namespace,
        values={
            **addon.values,
            "nodeSelector": {"node-role": "system"},
            "audit": {**addon.values["audit"], "tolerashuns": []},
        },
    )
    assert sorted(unread_keys(misplaced)) == ["audit.tolerashuns", "nodeSelector"]


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_images_are_pinned(case: tuple[str, str]) -> None:
    found = [
        (release, where, image)
        for release, objects in helm.render_environment(*case).items()
        for where, image in images(objects)
    ]
    assert found
    assert [f for f in found if unpinned(f[2])] == []


@pytest.mark.parametrize(
    "image",
    [
        "quay.io/prometheus/prometheus",
        "docker.io/istio/proxyv2:latest",
        "registry.istio.io/testing/pilot:",
        "localhost:5000/app",
    ],
)
def test_unpinned_image_is_reported(image: str) -> None:
    assert unpinned(image)


@pytest.mark.parametrize(
    "case", [c for c in ENVIRONMENTS if any(a.name == "falco" for a in helm.addons(*c))], ids=_env_id
)
def test_falco_sends_events_to_the_falcosidekick_service(case: tuple[str, str]) -> None:
    objects = helm.render_environment(*case)["falco"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    [config] = [
        yamlio.load(o["data"]["falco.yaml"])
        for o in objects
        if o["kind"] == "ConfigMap" and "falco.yaml" in o.get("data", {})
    ]
    host = re.fullmatch(r"http://([^:/.]+)[^:]*:(\d+)", config["http_output"]["url"])
    assert host and host.group(1) in services, f"{config['http_output']['url']} is none of {services}"
    [sidekick] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == host.group(1)]
    assert (
        sidekick["spec"]["template"]["spec"]["serviceAccountName"]
        == next(a for a in helm.addons(*case) if a.name == "falco").service_account
    )


# --- CRDs the released charts carry -------------------------------------------------------------


def crd_directories_without_crds(root: Path) -> list[str]:
    """Every `crds` directory (chart crds/ or templates/crds/) below `root` that declares no CRD:
    the source-tree placeholder a release fills in (external-secrets' README-only templates/crds/)."""
    return sorted(
        str(d.relative_to(root))
        for d in root.rglob("crds")
        if d.is_dir()
        and not any(
            "kind: CustomResourceDefinition" in f.read_text(errors="replace") for f in d.rglob("*") if f.is_file()
        )
    )


def test_every_vendored_crds_directory_holds_crds() -> None:
    assert crd_directories_without_crds(CHARTS_DIR) == []


def test_crds_directory_with_only_a_readme_is_reported(tmp_path: Path) -> None:
    (tmp_path / "chart" / "templates" / "crds").mkdir(parents=True)
    (tmp_path / "chart" / "templates" / "crds" / "README.md").write_text(
        "CRDs are autogenerated during helm packaging."
    )
    assert crd_directories_without_crds(tmp_path) == ["chart/templates/crds"]


EXTERNAL_SECRETS = next(s["dir"] for s in SOURCES if s["dir"].startswith("external-secrets-") and "/" not in s["dir"])


def _upstream_secretstore_crd() -> dict[str, Any]:
    """The SecretStore CRD as upstream's own helm-unittest snapshot records the released chart rendering it."""
    return copy.deepcopy(_read_upstream_secretstore_crd())


@cache
def _read_upstream_secretstore_crd() -> dict[str, Any]:
    # Read once per process, with libyaml: the snapshot holds 600 kB of YAML in a YAML string, three
    # seconds for PyYAML's pure-Python reader (same safe constructor, same result).
    snapshot_file = CHARTS_DIR / EXTERNAL_SECRETS / "tests/__snapshot__/crds_test.yaml.snap"
    snapshot = yamlio.load(snapshot_file.read_text())
    return yamlio.load(snapshot["should match snapshot of default values"][1])


def _without_schemas(crd: dict[str, Any] | None) -> dict[str, Any] | None:
    """The CRD less its versions' openAPIV3Schema: upstream's snapshot was recorded before the tag and
    never refreshed, so its schemas are older; names, versions, serving and printer columns are what
    the release step templates, and those it records as released."""
    if crd is None:
        return None
    crd = copy.deepcopy(crd)
    for version in crd["spec"]["versions"]:
        version.pop("schema")
    return crd


def _rendered_crd(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == "CustomResourceDefinition" and o["metadata"]["name"] == name), None)


@pytest.mark.parametrize("case", ENVIRONMENTS[:1], ids=_env_id)
def test_external_secrets_crds_are_the_released_charts(case: tuple[str, str]) -> None:
    objects = helm.render_environment(*case)["external-secrets"]
    upstream = _upstream_secretstore_crd()
    assert _without_schemas(_rendered_crd(objects, upstream["metadata"]["name"])) == _without_schemas(upstream)
    kinds = {o["spec"]["names"]["kind"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert {"ExternalSecret", "ClusterSecretStore", "SecretStore", "PushSecret", "ClusterExternalSecret"} <= kinds


def test_a_drifted_crd_differs_from_upstreams_snapshot() -> None:
    drifted = copy.deepcopy(_upstream_secretstore_crd())
    drifted["spec"]["versions"][-1]["served"] = True
    assert _without_schemas(drifted) != _without_schemas(_upstream_secretstore_crd())


# --- every rendered object against its schema ---------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD's structural openAPIV3Schema as JSON Schema, refusing unknown fields as the API server
    does under strict field validation (https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: _strict(value)
        for key, value in schema.items()
        if key not in ("properties", "additionalProperties") and not key.startswith("x-kubernetes-")
    }
    if "properties" in schema:
        out["properties"] = {name: _strict(sub) for name, sub in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    elif (
        schema.get("type") == "object"
        and "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if isinstance(out.get("pattern"), str):
        # Go's RE2 takes inline flags anywhere (`^(?i)...`); Python only at the start.
        out["pattern"] = re.sub(r"^\^(\(\?[a-z]+\))", r"\1^", out["pattern"])
    return out


def schema_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Built-in kinds strictly against Kubernetes 1.35 (kubernetes-validate); custom resources against
    the openAPIV3Schema of the CRD (rendered in the same environment) serving their version."""
    crds = {
        (f"{o['spec']['group']}/{v['name']}", o["spec"]["names"]["kind"]): v["schema"]["openAPIV3Schema"]
        for o in objects
        if o["kind"] == "CustomResourceDefinition"
        for v in o["spec"]["versions"]
    }
    validators: dict[tuple[str, str], jsonschema.Draft4Validator] = {}
    errors: list[str] = []
    for obj in [item for o in objects for item in (o.get("items") or [] if o["kind"] == "List" else [o])]:
        key = (obj["apiVersion"], obj["kind"])
        schema = crds.get(key)
        if schema is None:
            error = _builtin_error(json.dumps(obj, sort_keys=True))
        else:
            if key not in validators:
                validators[key] = jsonschema.Draft4Validator(_strict(schema))
            found = jsonschema.exceptions.best_match(
                validators[key].iter_errors({k: v for k, v in obj.items() if k != "metadata"})
            )
            error = found.message if found else None
        if error:
            errors.append(f"{obj['kind']} {obj['metadata'].get('name')}: {error}")
    return errors


@cache
def _builtin_error(serialized: str) -> str | None:
    """kubernetes-validate's verdict on one built-in object; most objects render identically in
    every environment, so each distinct one is validated once per session."""
    try:
        kubernetes_schema.validate(json.loads(serialized), "1.35.0", strict=True)
    except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as error:
        return str(getattr(error, "message", error))
    return None


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_rendered_objects_validate_strictly(case: tuple[str, str]) -> None:
    objects = [o for objs in helm.render_environment(*case).values() for o in objs]
    assert schema_errors(objects) == []


@pytest.mark.parametrize(
    "kind,path",
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0, "securityContxt")),
        ("Deployment", ("spec", "template", "spec", "containers", 0, "resources", "limts")),
        ("PrometheusRule", ("spec", "groups", 0, "ruless")),
        ("ServiceMonitor", ("spec", "endpoints", 0, "intervall")),
    ],
)
def test_a_misspelt_field_is_refused(kind: str, path: tuple) -> None:
    objects = [o for objs in helm.render_environment(*ENVIRONMENTS[0]).values() for o in objs]
    broken = copy.deepcopy(next(o for o in objects if o["kind"] == kind))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = {}
    assert schema_errors([o for o in objects if o["kind"] == "CustomResourceDefinition"] + [broken])


def test_capabilities_are_the_api_servers() -> None:
    served = helm.served_api_versions("1.35")
    assert "apiregistration.k8s.io/v1" in served and "policy/v1/PodDisruptionBudget" in served
    assert "apiregistration.k8s.io/v1beta1" not in served and "policy/v1beta1/PodSecurityPolicy" not in served
