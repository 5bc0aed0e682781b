"""Lists every container image the rendered Kubernetes manifests reference, once each.

The pipeline's security step scans each of them; a test checks every one is pinned.
Usage: python -m scripts.images cdk.out/manifests
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config import yamlio


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
    objects = [doc for f in sorted(directory.rglob("*.yaml")) for doc in yamlio.load_all(f.read_text()) if doc]
    return images(objects)


if __name__ == "__main__":
    for image in images_in(Path(sys.argv[1] if len(sys.argv) > 1 else "cdk.out/manifests")):
        print(image)
