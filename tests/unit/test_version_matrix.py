"""The README's version matrix lists exactly the images the charts pin, at their pinned tags."""

from __future__ import annotations

import re
from pathlib import Path

from k8s_charts.supabase import images

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_matrix_matches_images_py():
    versions = README.read_text().split("## Versions", 1)[1]
    listed = re.findall(r"^\| [^|]+ \| `([^`]+)` \| [^|]+ \|$", versions, flags=re.MULTILINE)
    pinned = [v.ref for v in vars(images).values() if isinstance(v, images.Image)]
    assert sorted(listed) == sorted(pinned)
