"""Third-party Python packages of the Lambda functions, each function's shipped as a layer of PyPI's wheels.

A function with packages beyond the standard library and boto3 is declared once in FUNCTIONS:
its folder under ops/, its runtime and its architecture. Its pins live in
ops/<name>/requirements.txt.

AWS documents how to build a function's dependencies without Docker: ask pip for the wheels of
the function's platform (`pip install --platform manylinux2014_aarch64 --implementation cp
--python-version 3.14 --only-binary=:all: --target <dir>`,
https://docs.aws.amazon.com/lambda/latest/dg/python-package.html). `make install` runs that for
every ops/<name>/requirements.txt into BUILD_DIR/<name> (gitignored). A layer's Python packages
live under `python/`, which Lambda puts on `sys.path` as /opt/python
(https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html).

Synth builds nothing; it only refuses a folder that is missing, holds other versions than the
pins, or holds a wheel the function's runtime or architecture cannot load, because each of those
would deploy and then fail at the first import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
OPS_DIR = ROOT / "ops"
BUILD_DIR = ROOT / ".build" / "lambda"
# Written by `make install` after pip succeeded; not part of the layer.
STAMP = ".installed"
# Python 3.12+ runtimes run on Amazon Linux 2023, whose glibc is 2.34
# (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
LAMBDA_GLIBC_MINOR = 34
_MACHINES = {"arm64": "aarch64", "x86_64": "x86_64"}
_MANYLINUX = re.compile(r"^manylinux(?:2014|_2_(\d+))_(\w+)$")


class LambdaDependenciesError(Exception):
    """The built dependencies cannot ship; the message names the folder and `make install`."""


@dataclass(frozen=True, kw_only=True)
class FunctionDependencies:
    """A function whose code is ops/<name> and whose packages are pinned in ops/<name>/requirements.txt."""

    name: str
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture

    @property
    def code_dir(self) -> Path:
        return OPS_DIR / self.name

    @property
    def requirements(self) -> Path:
        return self.code_dir / "requirements.txt"

    @property
    def build_dir(self) -> Path:
        """Where `make install` puts the layer: python/ holds the packages."""
        return BUILD_DIR / self.name


MINT_API_KEYS = FunctionDependencies(
    name="mint_api_keys", runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64
)
RESTORE_VALIDATION = FunctionDependencies(
    name="restore_validation", runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64
)
FUNCTIONS = (MINT_API_KEYS, RESTORE_VALIDATION)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: Path) -> dict[str, str]:
    """Package -> pinned version, from the `name==version` lines of the requirements file."""
    pinned = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, separator, version = line.partition("==")
            if not separator:
                raise LambdaDependenciesError(f"{requirements.name}: {line!r} is not pinned with ==")
            pinned[_normalized(name)] = version.strip()
    return pinned


def _tag_fits(tag: str, *, python: tuple[int, int], machine: str) -> bool:
    interpreters, abis, platforms = tag.split("-")
    cpython = f"cp{python[0]}{python[1]}"
    for interpreter in interpreters.split("."):
        for abi in abis.split("."):
            for platform in platforms.split("."):
                manylinux = _MANYLINUX.match(platform)
                platform_fits = platform == "any" or (
                    manylinux is not None
                    and manylinux.group(2) == machine
                    and int(manylinux.group(1) or 17) <= LAMBDA_GLIBC_MINOR
                )
                version = re.fullmatch(r"cp(\d)(\d+)", interpreter)
                python_fits = (
                    (interpreter in ("py3", f"py{python[0]}{python[1]}") and abi == "none")
                    or (interpreter == cpython and abi in (cpython, "none"))
                    # The stable ABI: built for 3.x, loads on every later 3.y.
                    or (
                        version is not None
                        and abi == "abi3"
                        and (int(version.group(1)), int(version.group(2))) <= python
                    )
                )
                if platform_fits and python_fits:
                    return True
    return False


def problems(
    site: Path, *, runtime: lambda_.Runtime, architecture: lambda_.Architecture, pinned: dict[str, str]
) -> list[str]:
    """Why the packages in `site` cannot ship with a function of this runtime and architecture."""
    python = tuple(int(part) for part in runtime.name.removeprefix("python").split("."))
    machine = _MACHINES[architecture.name]
    found = {}
    found_problems = []
    for wheel in sorted(site.glob("*.dist-info/WHEEL")):
        name, _, version = wheel.parent.name.removesuffix(".dist-info").rpartition("-")
        found[_normalized(name)] = version
        tags = [line.split(":", 1)[1].strip() for line in wheel.read_text().splitlines() if line.startswith("Tag:")]
        if not any(_tag_fits(tag, python=(python[0], python[1]), machine=machine) for tag in tags):
            found_problems.append(
                f"{name} {version} is built for {', '.join(tags)}, which {runtime.name} on {architecture.name} "
                "cannot load"
            )
    for name, version in sorted(pinned.items()):
        if found.get(name) != version:
            found_problems.append(f"{name}: pinned {version}, built {found.get(name, 'nothing')}")
    found_problems += [
        f"{name} {version} is not pinned" for name, version in sorted(found.items()) if name not in pinned
    ]
    return found_problems


def dependencies_layer(
    scope: Construct, id_: str, *, dependencies: FunctionDependencies, description: str
) -> lambda_.LayerVersion:
    """The layer of the function's build folder, checked against its pins, runtime and architecture."""
    folder = dependencies.build_dir
    runtime, architecture = dependencies.runtime, dependencies.architecture
    shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    requirements = dependencies.requirements.relative_to(ROOT)
    fix = f"fix: run `make install`, which builds it from {requirements} with pip's manylinux wheels (no Docker)"
    if not (folder / STAMP).is_file():
        raise LambdaDependenciesError(f"the Lambda dependencies in {shown} are missing or half-built; {fix}")
    found = problems(
        folder / "python", runtime=runtime, architecture=architecture, pinned=pins(dependencies.requirements)
    )
    if found:
        raise LambdaDependenciesError(
            f"the Lambda dependencies in {shown} do not match {requirements} and the function "
            f"({runtime.name}, {architecture.name}): {'; '.join(found)}; {fix}"
        )
    return lambda_.LayerVersion(
        scope,
        id_,
        code=lambda_.Code.from_asset(str(folder), exclude=[STAMP, "**/__pycache__"]),
        compatible_runtimes=[runtime],
        compatible_architectures=[architecture],
        description=description,
        # A replaced version can go: "a copy of the version remains in Lambda until no functions
        # refer to it" (https://docs.aws.amazon.com/lambda/latest/dg/API_DeleteLayerVersion.html).
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def function_code(dependencies: FunctionDependencies) -> lambda_.Code:
    """The function's own folder as its asset; its packages come in the layer, its pins stay out."""
    return lambda_.Code.from_asset(str(dependencies.code_dir), exclude=["requirements.txt", "__pycache__", "*.pyc"])
