"""external-secrets' release step `make helm.generate` (hack/helm.generate.sh), run at vendoring time.

The source chart's templates/crds/ holds only a README: upstream writes the CRDs into it from
deploy/crds/bundle.yaml when it packages the chart. The script needs mikefarah yq v4, which no
registry this project reaches ships, so this is its transcription, step for step, over the
bundle's text (no YAML re-serialization):

- one file per document, named by `.spec.names.singular` (`yq -Ns`);
- for ExternalSecret/SecretStore kinds, `v1beta1`'s `served: false` becomes the value
  `crds.unsafeServeV1Beta1` (its v1alpha1 step matches no version of the bundle at this tag);
- the `installCRDs` guard, with `crds.create<Kind>` for Cluster* and PushSecret kinds;
- the webhook service name and namespace substitutions;
- `crds.annotations` (and the cert-manager CA injection) after the first `annotations` line.

Usage: python charts/external_secrets_helm_generate.py BUNDLE_YAML CHART_DIR
(BUNDLE_YAML: `git show <tag>:deploy/crds/bundle.yaml`, the same commit as the chart).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ANNOTATIONS = (
    "    {{- with .Values.crds.annotations }}\n"
    "    {{- toYaml . | nindent 4}}\n"
    "    {{- end }}\n"
    "    {{- if and .Values.crds.conversion.enabled .Values.webhook.certManager.enabled"
    " .Values.webhook.certManager.addInjectorAnnotations }}\n"
    '    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "external-secrets.fullname" . }}-webhook\n'
    "    {{- end }}\n"
)


def _documents(bundle: str) -> list[str]:
    return [doc.strip("\n") + "\n" for doc in re.split(r"^---$", bundle, flags=re.MULTILINE) if doc.strip()]


def _serve_v1beta1_by_value(text: str) -> str:
    """sed '/name: v1beta1/,/served: false/{s/served: false/served: {{ .Values.crds.unsafeServeV1Beta1 }}/}'."""
    out, in_range = [], False
    for line in text.splitlines(keepends=True):
        starts = not in_range and "name: v1beta1" in line
        if starts or in_range:
            ends = in_range and "served: false" in line
            line = line.replace("served: false", "served: {{ .Values.crds.unsafeServeV1Beta1 }}", 1)
            in_range = not ends
        out.append(line)
    return "".join(out)


def _after_first_annotations(text: str) -> str:
    """sed '0,/annotations/!b;//a\\...': the block follows the first line naming annotations."""
    lines = text.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if "annotations" in line)
    return "".join(lines[: first + 1]) + ANNOTATIONS + "".join(lines[first + 1:])


def template(document: str) -> tuple[str, str]:
    """(file name, template text) for one CRD of the bundle."""
    crd = yaml.safe_load(document)
    kind = crd["spec"]["names"]["kind"]
    flag = f"create{kind}"
    body = _serve_v1beta1_by_value(document) if "ExternalSecret" in flag or "SecretStore" in flag else document
    guard = ("{{- if and (.Values.installCRDs) (.Values.crds.%s) }}\n" % flag
             if "Cluster" in flag or "PushSecret" in flag else "{{- if .Values.installCRDs }}\n")
    text = guard + body + "{{- end }}\n"
    text = text.replace("name: kubernetes", 'name: {{ include "external-secrets.fullname" . }}-webhook')
    text = text.replace("namespace: default", "namespace: {{ .Release.Namespace | quote }}")
    return f"{crd['spec']['names']['singular']}.yaml", _after_first_annotations(text)


def main(bundle: Path, chart_dir: Path) -> None:
    for document in _documents(bundle.read_text()):
        name, text = template(document)
        (chart_dir / "templates" / "crds" / name).write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
