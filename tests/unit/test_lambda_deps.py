"""The Lambda dependency layer: `make install` builds it from the pins without Docker, and synth
refuses a missing, stale or foreign-platform build with a message naming `make install`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from aws_cdk import aws_lambda as lambda_

import app
from constructs_lib import lambda_deps
from constructs_lib.api_keys import ARCHITECTURE, DEPENDENCIES, RUNTIME

ROOT = Path(__file__).resolve().parents[2]
BUILT = lambda_deps.BUILD_DIR / DEPENDENCIES / "python"


def wheel(site: Path, name: str, version: str, *tags: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {tag}\n" for tag in tags))


def test_the_built_layer_holds_exactly_the_pins_as_wheels_lambda_can_load():
    """The real `make install` output: cryptography is an abi3 wheel (cp311-abi3), so Python 3.14 loads it."""
    assert not lambda_deps.problems(BUILT, runtime=RUNTIME, architecture=ARCHITECTURE, pinned=lambda_deps.pins())
    (crypto,) = BUILT.glob("cryptography-*.dist-info")
    tags = [line for line in (crypto / "WHEEL").read_text().splitlines() if line.startswith("Tag:")]
    assert tags and all("-abi3-" in tag and tag.endswith("_aarch64") for tag in tags)
    # Lambda puts a layer's python/ on sys.path (/opt/python): the packages sit right there.
    assert (BUILT / "jwt" / "__init__.py").is_file() and (BUILT / "cryptography" / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("tags", "fits"),
    [
        (["cp311-abi3-manylinux_2_17_aarch64"], True),  # the stable ABI of an older Python
        (["cp314-cp314-manylinux2014_aarch64"], True),
        (["py3-none-any"], True),
        (["cp315-abi3-manylinux_2_17_aarch64"], False),  # needs a newer Python
        (["cp313-cp313-manylinux2014_aarch64"], False),  # another Python's ABI
        (["cp311-abi3-manylinux_2_17_x86_64"], False),  # another architecture
        (["cp311-abi3-manylinux_2_39_aarch64"], False),  # newer glibc than Amazon Linux 2023's 2.34
        (["cp311-abi3-macosx_11_0_arm64"], False),
    ],
)
def test_wheel_tags_are_judged_for_the_function(tmp_path, tags, fits):
    wheel(tmp_path, "pkg", "1.0", *tags)
    found = lambda_deps.problems(tmp_path, runtime=RUNTIME, architecture=ARCHITECTURE, pinned={"pkg": "1.0"})
    assert found == ([] if fits else [f"pkg 1.0 is built for {', '.join(tags)}, which python3.14 on arm64 cannot load"])


def test_versions_must_be_exactly_the_pins(tmp_path):
    wheel(tmp_path, "PyJWT", "2.10.0", "py3-none-any")
    wheel(tmp_path, "extra", "1.0", "py3-none-any")
    found = lambda_deps.problems(
        tmp_path,
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=ARCHITECTURE,
        pinned={"pyjwt": "2.15.1", "cffi": "2.1.1"},
    )
    assert found == [
        "cffi: pinned 2.1.1, built nothing",
        "pyjwt: pinned 2.15.1, built 2.10.0",
        "extra 1.0 is not pinned",
    ]


def test_synth_without_the_build_names_make_install_and_prints_no_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lambda_deps, "BUILD_DIR", tmp_path / "missing")
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    monkeypatch.delenv("CDK_DEBUG", raising=False)
    assert app.main() == 1
    err = capsys.readouterr().err
    # CDK may announce other assets' bundling first; the error is the last word.
    assert err.splitlines()[-1].startswith("build error: the Lambda dependencies in ")
    assert "fix: run `make install`" in err and "Traceback" not in err
    assert not (tmp_path / "cdk.out").exists()


def test_make_rebuilds_the_layer_when_the_pins_change():
    """`make install` (and so `make test` and `make synth`) builds the folder, from scratch when the pins change."""
    target = f"{lambda_deps.BUILD_DIR.relative_to(ROOT)}/{DEPENDENCIES}/{lambda_deps.STAMP}"
    plan = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "-W", "requirements-lambda.txt", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"rm -rf {lambda_deps.BUILD_DIR.relative_to(ROOT)}/{DEPENDENCIES}" in plan
    pip = " ".join(plan.split("\\\n"))
    for flag in (
        "--platform manylinux2014_aarch64",
        "--implementation cp",
        f"--python-version {RUNTIME.name.removeprefix('python')}",
        "--only-binary=:all:",
        f"--target {lambda_deps.BUILD_DIR.relative_to(ROOT)}/{DEPENDENCIES}/python",
        "-r requirements-lambda.txt",
    ):
        assert flag in " ".join(pip.split()), flag
    install = subprocess.run(["make", "-p", "-n", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    (recipe,) = [line for line in install.splitlines() if "$(MAKE) --no-print-directory" in line]
    assert "$(LAMBDA_DEPS)/.installed" in recipe
    assert "test: install" in install
