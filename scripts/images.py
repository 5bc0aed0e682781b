"""Lists every container image the rendered Kubernetes manifests reference, once each.

The pipeline's security step scans each of them; a test checks every one is pinned.
Usage: python -m scripts.images cdk.out/manifests
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# The pipeline's security step runs this with PyYAML alone (stacks/pipeline_stack.py), so it reads
# the manifests with PyYAML directly: config.yamlio's package imports the loader's pydantic.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _images(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from _images(value)
    elif isinstance(node, list):
        for item in node:
            yield from _images(item)


def images(objects: list[dict]) -> list[str]:
    return sorted({image for obj in objects for image in _images(obj)})


def images_in(directory: Path) -> list[str]:
    texts = [f.read_text() for f in sorted(directory.rglob("*.yaml"))]
    return images([doc for text in texts for doc in yaml.load_all(text, Loader=_LOADER) if doc])  # noqa: TID251


if __name__ == "__main__":
    for image in images_in(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out/manifests")):
        print(image)
