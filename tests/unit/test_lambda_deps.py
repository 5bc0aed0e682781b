"""The Lambda dependency layers: each function with packages is declared once (its folder under
ops/, runtime, architecture), `make install` builds every one from its pins without Docker, and
synth refuses a missing, stale or foreign-platform build with a message naming `make install`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

import app
from constructs_lib import lambda_deps
from constructs_lib.lambda_deps import FUNCTIONS, MINT_API_KEYS, RESTORE_VALIDATION, FunctionDependencies

ROOT = Path(__file__).resolve().parents[2]
NAMES = [function.name for function in FUNCTIONS]


def wheel(site: Path, name: str, version: str, *tags: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "WHEEL").write_text("Wheel-Version: 1.0\n" + "".join(f"Tag: {tag}\n" for tag in tags))


def test_every_function_with_requirements_is_declared_once():
    """`make install` builds a folder for every ops/<name>/requirements.txt; synth checks only the
    declared functions, so an undeclared one would ship a layer nobody checked (or none)."""
    assert sorted(p.parent.name for p in (ROOT / "ops").glob("*/requirements.txt")) == sorted(NAMES)
    assert len(set(NAMES)) == len(NAMES)


@pytest.mark.parametrize("function", FUNCTIONS, ids=NAMES)
def test_each_built_layer_holds_exactly_its_pins_as_wheels_lambda_can_load(function: FunctionDependencies):
    built = function.build_dir / "python"
    pinned = lambda_deps.pins(function.requirements)
    assert pinned
    assert not lambda_deps.problems(built, runtime=function.runtime, architecture=function.architecture, pinned=pinned)


def test_the_minters_cryptography_is_an_abi3_wheel_for_arm64():
    """The real `make install` output: cryptography is an abi3 wheel (cp311-abi3), so Python 3.14 loads it."""
    built = MINT_API_KEYS.build_dir / "python"
    (crypto,) = built.glob("cryptography-*.dist-info")
    tags = [line for line in (crypto / "WHEEL").read_text().splitlines() if line.startswith("Tag:")]
    assert tags and all("-abi3-" in tag and tag.endswith("_aarch64") for tag in tags)
    # Lambda puts a layer's python/ on sys.path (/opt/python): the packages sit right there.
    assert (built / "jwt" / "__init__.py").is_file() and (built / "cryptography" / "__init__.py").is_file()


def test_the_restore_validation_layer_is_pg8000_in_pure_python():
    built = RESTORE_VALIDATION.build_dir / "python"
    assert (built / "pg8000" / "native.py").is_file() and (built / "scramp" / "core.py").is_file()
    assert not [p for p in built.rglob("*") if p.suffix in (".so", ".pyd")]


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
    found = lambda_deps.problems(
        tmp_path, runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64, pinned={"pkg": "1.0"}
    )
    assert found == ([] if fits else [f"pkg 1.0 is built for {', '.join(tags)}, which python3.14 on arm64 cannot load"])


def test_versions_must_be_exactly_the_pins(tmp_path):
    wheel(tmp_path, "PyJWT", "2.10.0", "py3-none-any")
    wheel(tmp_path, "extra", "1.0", "py3-none-any")
    found = lambda_deps.problems(
        tmp_path,
        runtime=lambda_.Runtime.PYTHON_3_14,
        architecture=lambda_.Architecture.ARM_64,
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
    # No asset is bundled at synth any more, so nothing ("Bundling asset ...") precedes the error.
    (line,) = err.splitlines()
    assert line.startswith("build error: the Lambda dependencies in ")
    assert "fix: run `make install`" in err and "Traceback" not in err
    assert not (tmp_path / "cdk.out").exists()


@pytest.mark.parametrize("function", FUNCTIONS, ids=NAMES)
def test_synth_refuses_each_functions_missing_or_stale_build(tmp_path, monkeypatch, function):
    built = function.build_dir
    monkeypatch.setattr(lambda_deps, "BUILD_DIR", tmp_path)
    stack = cdk.Stack(cdk.App(), "S")
    folder = f"{tmp_path}/{function.name}"
    with pytest.raises(
        lambda_deps.LambdaDependenciesError, match=f"^the Lambda dependencies in {re.escape(folder)} are missing"
    ):
        lambda_deps.dependencies_layer(stack, "Missing", dependencies=function, description="d")
    shutil.copytree(built, folder)
    (name, version), *_ = lambda_deps.pins(function.requirements).items()
    (info,) = (tmp_path / function.name / "python").glob(f"{name.replace('-', '_')}-{version}.dist-info")
    info.rename(info.with_name(f"{name.replace('-', '_')}-0.1.dist-info"))
    with pytest.raises(lambda_deps.LambdaDependenciesError) as stale:
        lambda_deps.dependencies_layer(stack, "Stale", dependencies=function, description="d")
    assert f"do not match ops/{function.name}/requirements.txt" in str(stale.value)
    assert f"{name}: pinned {version}, built 0.1" in str(stale.value)
    assert str(stale.value).endswith(
        f"fix: run `make install`, which builds it from ops/{function.name}/requirements.txt with pip's manylinux "
        "wheels (no Docker)"
    )


@pytest.mark.parametrize("function", FUNCTIONS, ids=NAMES)
def test_make_builds_each_layer_for_its_function_and_rebuilds_it_when_the_pins_change(function):
    """`make install` (and so `make test` and `make synth`) builds every folder, each from scratch when
    its pins change, with wheels for the function's Python and architecture."""
    folder = function.build_dir.relative_to(ROOT)
    requirements = function.requirements.relative_to(ROOT)
    plan = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "-W", str(requirements), f"{folder}/{lambda_deps.STAMP}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"rm -rf {folder}\n" in plan
    pip = " ".join(" ".join(plan.split("\\\n")).split())
    for flag in (
        f"--platform manylinux2014_{lambda_deps._MACHINES[function.architecture.name]}",
        "--implementation cp",
        f"--python-version {function.runtime.name.removeprefix('python')}",
        "--only-binary=:all:",
        f"--target {folder}/python",
        f"-r {requirements}",
    ):
        assert flag in pip, flag


def test_make_install_builds_every_layer():
    database = subprocess.run(["make", "-p", "-n", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    (recipe,) = [line for line in database.splitlines() if "$(MAKE) --no-print-directory" in line]
    assert "$(LAMBDA_DEPS)" in recipe
    (deps,) = [line for line in database.splitlines() if line.startswith("LAMBDA_DEPS := ")]
    assert set(deps.removeprefix("LAMBDA_DEPS := ").split()) == {
        f"{function.build_dir.relative_to(ROOT)}/{lambda_deps.STAMP}" for function in FUNCTIONS
    }
    assert "test: install" in database
