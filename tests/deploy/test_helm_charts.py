"""The vendored upstream charts, rendered by real helm with the project's values, per environment.

helm ignores values a chart never reads, so a misplaced key (placement, a renamed option) is a
silent no-op: every key the project sets must exist in the chart's values.yaml (subcharts under
their name), sit below a map the chart documents as free-form, or be read by its templates.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from constructs_lib.addons import HelmAddon
from constructs_lib.addons.base import CHARTS_DIR
from tests.deploy import helm

ENVIRONMENTS = helm.environments()
SOURCES = yaml.safe_load((CHARTS_DIR / "SOURCES.yaml").read_text())["charts"]
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
# Maps the charts pass through unchanged (toYaml or one flag per key): any key below is theirs to read.
FREE_FORM = {
    ("cluster-autoscaler", "extraArgs"): "rendered as one --key=value flag per entry (templates/deployment.yaml)",
}
# Kubernetes API fields the charts pass through with toYaml: their keys belong to Kubernetes.
KUBERNETES_FIELDS = {"nodeSelector", "annotations", "podAnnotations", "labels", "podLabels", "resources",
                     "securityContext", "podSecurityContext", "containerSecurityContext"}


def _env_id(case: tuple[str, str]) -> str:
    return "-".join(case)


@cache
def chart_defaults(chart_dir: Path) -> dict[str, Any]:
    """values.yaml with each subchart's defaults under its name (or alias), as helm coalesces them."""
    values = yaml.safe_load((chart_dir / "values.yaml").read_text()) or {}
    # Istio's charts keep their defaults under this key and merge it to the top in zzz_profile.yaml.
    values = {**(values.pop("_internal_defaults_do_not_set", None) or {}), **values}
    legacy = chart_dir / "templates" / "zzy_descope_legacy.yaml"
    if legacy.is_file():
        # istiod merges `pilot.*` (the pre-1.24 layout) onto the top level.
        for alias in re.findall(r'mustMergeOverwrite \$\.Values \(index \$\.Values "(\w+)"\)', legacy.read_text()):
            values[alias] = dict(values)
    for dep in yaml.safe_load((chart_dir / "Chart.yaml").read_text()).get("dependencies") or []:
        key = dep.get("alias") or dep["name"]
        values[key] = {**chart_defaults(chart_dir / "charts" / dep["name"]), **(values.get(key) or {})}
    return values


@cache
def template_text(chart_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(chart_dir.rglob("*"))
                     if p.is_file() and p.suffix in {".yaml", ".tpl", ".txt"} and p.name != "values.yaml"
                     and ("templates" in p.parts or "files" in p.parts))


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
        for container in pod.get("containers", []) + pod.get("initContainers", []):
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
        chart = yaml.safe_load((CHARTS_DIR / parent / "Chart.yaml").read_text())
        for dep in chart.get("dependencies") or []:
            # Dependencies without a repository ship inside the parent's own source.
            if dep.get("repository"):
                assert f"{parent}/charts/{dep['name']}" in recorded, f"{parent}: {dep['name']} not recorded"


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_every_addon_installs_its_pinned_chart(case: tuple[str, str]) -> None:
    by_dir = {s["dir"]: s for s in SOURCES}
    for addon in helm.addons(*case):
        chart = yaml.safe_load((addon.chart_dir / "Chart.yaml").read_text())
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
    broken = HelmAddon(name="istio-cni", chart="cni", version="1.30.3", namespace="istio-system",
                       values={"profile": "default"})
    with pytest.raises(helm.HelmError, match="unknown profile"):
        helm.render(broken, kube_version="1.35")


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_charts_render(case: tuple[str, str], report) -> None:
    rendered = helm.render_environment(*case)
    for release, objects in rendered.items():
        assert objects, f"{release} rendered nothing"
    totals = [(org, env, helm.render_environment(org, env)) for org, env in ENVIRONMENTS]
    report("helm charts", f"{len({a.chart_dir for o, e in ENVIRONMENTS for a in helm.addons(o, e)})} vendored charts "
           f"rendered for {len(totals)} environments ({sum(len(r) for *_, r in totals)} releases), "
           f"{sum(len(objs) for *_, r in totals for objs in r.values())} objects")


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_every_value_is_read_by_its_chart(case: tuple[str, str]) -> None:
    unread = {a.name: unread_keys(a) for a in helm.addons(*case)}
    assert {k: v for k, v in unread.items() if v} == {}


def test_unread_value_is_reported() -> None:
    addon = next(a for a in helm.addons(*ENVIRONMENTS[0]) if a.name == "gatekeeper")
    misplaced = HelmAddon(name=addon.name, chart=addon.chart, version=addon.version, namespace=addon.namespace,
                          values={**addon.values, "nodeSelector": {"node-role": "system"},
                                  "audit": {**addon.values["audit"], "tolerashuns": []}})
    assert sorted(unread_keys(misplaced)) == ["audit.tolerashuns", "nodeSelector"]


@pytest.mark.parametrize("case", ENVIRONMENTS, ids=_env_id)
def test_images_are_pinned(case: tuple[str, str]) -> None:
    found = [(release, where, image) for release, objects in helm.render_environment(*case).items()
             for where, image in images(objects)]
    assert found
    assert [f for f in found if unpinned(f[2])] == []


@pytest.mark.parametrize("image", ["quay.io/prometheus/prometheus", "docker.io/istio/proxyv2:latest",
                                   "registry.istio.io/testing/pilot:", "localhost:5000/app"])
def test_unpinned_image_is_reported(image: str) -> None:
    assert unpinned(image)


@pytest.mark.parametrize("case", [c for c in ENVIRONMENTS if any(a.name == "falco" for a in helm.addons(*c))],
                         ids=_env_id)
def test_falco_sends_events_to_the_falcosidekick_service(case: tuple[str, str]) -> None:
    objects = helm.render_environment(*case)["falco"]
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    [config] = [yaml.safe_load(o["data"]["falco.yaml"]) for o in objects
                if o["kind"] == "ConfigMap" and "falco.yaml" in o.get("data", {})]
    host = re.fullmatch(r"http://([^:/.]+)[^:]*:(\d+)", config["http_output"]["url"])
    assert host and host.group(1) in services, f"{config['http_output']['url']} is none of {services}"
    [sidekick] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == host.group(1)]
    assert sidekick["spec"]["template"]["spec"]["serviceAccountName"] == next(
        a for a in helm.addons(*case) if a.name == "falco").service_account
