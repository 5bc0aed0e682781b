"""config.yamlio reads and writes what PyYAML's safe API does, through libyaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config import yamlio

ROOT = Path(__file__).resolve().parents[2]
# The project's own YAML: organization configs, price tables, fixtures and a vendored chart's values.
FILES = sorted(
    [
        *ROOT.glob("config/*.yaml"),
        *ROOT.glob("scripts/cost/*.yaml"),
        *ROOT.glob("tests/fixtures/*.yaml"),
        ROOT / "charts" / "SOURCES.yaml",
    ]
)


def test_libyaml_is_used_where_pyyaml_has_it():
    assert yaml.__with_libyaml__, "PyYAML was installed without libyaml: every YAML read falls back to pure Python"
    assert yamlio.Loader is yaml.CSafeLoader
    assert yamlio.Dumper is yaml.CSafeDumper


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_data_as_the_safe_loader_and_a_dump_reads_back(path):
    text = path.read_text()
    data = yamlio.load(text)
    assert data == yaml.load(text, Loader=yaml.SafeLoader)  # noqa: TID251 - the reference it is held to
    assert yamlio.load(yamlio.dump(data, sort_keys=False)) == data


def test_errors_carry_the_position():
    with pytest.raises(yamlio.YAMLError) as caught:
        yamlio.load("a: [1, 2\nb: 3\n")
    assert caught.value.problem_mark.line == 1  # type: ignore[attr-defined]
