"""Session-wide fixtures: each organization is synthesized once per test session and shared.

`assembly` is the cloud assembly of every stack of every environment of config/default.yaml,
read from disk; `template("staging", "network")` returns a cached assertions Template. Both
xdist workers read the same assembly (`make synth`'s, or one synthesized by whichever worker
asked first). `production_stage` is one stage as constructs, for the few tests that need them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.loaders
import botocore.session
import pytest

# A deprecated CDK API fails the synth instead of printing a warning nobody reads.
os.environ.setdefault("JSII_DEPRECATED", "fail")
# aws-cdk-lib validates every template with its bundled copy of CloudFormation's schemas and
# lint rules during synth (`@aws/cloudformation-validate`), three quarters of a synth's time.
# The suite runs cfn-lint itself over every template (tests/compliance/test_cfn_scanners.py),
# so the built-in pass is switched off here; `make synth` keeps it.
os.environ.setdefault("CDK_VALIDATION", "false")

from config import OrgConfig, load_config
from tests import gc_tuning, promises, shared
from tests.deploy.cloud_assembly import CloudAssembly, Stack

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from stacks.stage import EnvironmentStage

# What imports aws_cdk (tests.synth, stacks, aws_cdk.assertions) is imported where it is used: the
# pytest-xdist controller loads this file too, runs no test, and importing aws_cdk starts a jsii
# kernel and loads the CDK into it, a second and a half before any worker can start.

# moto gives every mock a new boto3 default session, and each new botocore session reads the service
# models (JSON files of up to a few megabytes) from disk again: some 350 reads and five CPU-seconds
# in the Lambda handlers' tests. One loader per process keeps what it has read, as one long-lived
# session does; botocore builds each session's loader with this function (botocore/session.py).
botocore.session.create_loader = cache(botocore.loaders.create_loader)

# A worker keeps what the session renders to its end, and the default thresholds have the collector
# walk it again and again; the Go programs the tests start collect less often too (tests/gc_tuning.py).
gc_tuning.apply()


def _exit_without_finalizing() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# A worker's last act: once it has reported its results and every later-registered exit handler ran
# (the jsii kernel's stop, temporary directories), it leaves without Python's finalization, which
# frees the session's caches (assemblies, renders, Helm output) object by object: about two seconds
# at the end of every run, with the controller waiting. This file is the first of the suite's own
# modules a worker imports, so every handler the suite or the CDK registers runs before this one;
# the ones registered earlier (logging's flush, execnet's and filelock's cleanup) have nothing left
# to do in a worker by then.
if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_exit_without_finalizing)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Assembly:
    """One organization's cloud assembly as the CDK CLI wrote it, read from disk."""

    name: str
    outdir: Path
    cfg: OrgConfig
    cloud: CloudAssembly
    _templates: dict[str, Template] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, outdir: Path) -> Assembly:
        return cls(
            name=name,
            outdir=outdir,
            cfg=load_config(ORG_CONFIGS[name]),
            cloud=CloudAssembly.load(outdir, name=name),
        )

    def stacks(self) -> list[Stack]:
        return list(self.cloud)

    def stack(self, path: str) -> Stack:
        """By construct path: "org", "staging/network", "dev-deploy-access"."""
        return self.cloud.by_path(path)

    def template_json(self, path: str) -> dict:
        """A fresh copy of the template, which the caller may change."""
        template_path = self.stack(path).template_path
        assert template_path is not None
        return json.loads(template_path.read_text())

    def template(self, path: str) -> Template:
        from aws_cdk.assertions import Template

        if path not in self._templates:
            self._templates[path] = Template.from_json(self.template_json(path), skip_cyclical_dependencies_check=True)
        return self._templates[path]

    def template_files(self) -> list[Path]:
        return template_files(self.outdir)


def template_files(outdir: Path) -> list[Path]:
    """Every stack's template in an assembly, nested stage assemblies included."""
    return sorted(outdir.rglob("*.template.json"))


# Every organization the suite synthesizes and rehearses: the embedded default, a second one
# that differs in everything the default leaves unexercised, and the config being deployed
# when `make test CONFIG=...` names another one (the pipeline's build step does).
ORG_CONFIGS = {
    "default": ROOT / "config" / "default.yaml",
    "acme": ROOT / "tests" / "fixtures" / "orgs" / "acme.yaml",
}
# The default organization's environment names, for tests parametrized per environment.
_DEFAULT = load_config(ORG_CONFIGS["default"])
ENVIRONMENTS: tuple[str, ...] = tuple(_DEFAULT.environments)
# The environments the pipeline deploys, in order.
PROMOTION_ORDER: tuple[str, ...] = tuple(_DEFAULT.pipeline.promotion_order)
NON_PRODUCTION_ENVIRONMENTS: tuple[str, ...] = tuple(n for n, e in _DEFAULT.environments.items() if not e.production)


def environment_kinds(cfg: OrgConfig) -> tuple[str, ...]:
    """One environment of each kind, the first of each: the non-production one, then the production one."""
    return tuple(
        next(n for n, e in cfg.environments.items() if e.production is production) for production in (False, True)
    )


ENVIRONMENT_KINDS: tuple[str, ...] = environment_kinds(_DEFAULT)
_DEPLOYED = os.environ.get("SUPABASE_CONFIG")
if _DEPLOYED and (ROOT / _DEPLOYED).resolve() not in {path.resolve() for path in ORG_CONFIGS.values()}:
    ORG_CONFIGS["deployed"] = (ROOT / _DEPLOYED).resolve()
# `make test` runs `make synth` first, which leaves the CDK CLI's assembly of SUPABASE_CONFIG in
# SUPABASE_CDK_OUT (with cdk-nag and CloudFormation's validation run over it). The suite checks
# that assembly rather than synthesizing the same organization again; tests/synth.py gives the
# others the CLI's context, so both kinds of assembly hold the same templates.
_CLI_ASSEMBLY = os.environ.get("SUPABASE_CDK_OUT")
_CLI_ORG: str | None = None
if _CLI_ASSEMBLY:
    _made_from = (ROOT / (_DEPLOYED or ORG_CONFIGS["default"])).resolve()
    _CLI_ORG = next(name for name, path in ORG_CONFIGS.items() if path.resolve() == _made_from)


def assembly_dir(name: str) -> Path:
    """Where organization `name`'s assembly is: `make synth`'s, or one synthesized once per session."""
    if _CLI_ASSEMBLY and name == _CLI_ORG:
        return Path(_CLI_ASSEMBLY)
    from tests import synth

    config_file = ORG_CONFIGS[name]
    return shared.once(
        f"cdk.out-{name}",
        lambda outdir: synth.synthesize(load_config(config_file), outdir, config_file=config_file),
    )


@pytest.fixture(scope="session")
def synthesized():
    """`synthesized("acme")`: that organization's assembly (synthesized once per session)."""

    @cache
    def get(name: str) -> Assembly:
        return Assembly.load(name, assembly_dir(name))

    return get


@pytest.fixture(scope="session")
def production_stage(tmp_path_factory: pytest.TempPathFactory) -> EnvironmentStage:
    """The default organization's production stage (every feature on) as constructs, built and never
    synthesized, for what only the constructs show: the stacks' public attributes
    (tests/unit/test_public_attributes.py)."""
    from stacks.stage import EnvironmentStage
    from tests import synth

    cfg = load_config(ORG_CONFIGS["default"])
    name = next(name for name, env in cfg.environments.items() if env.production)
    return EnvironmentStage(synth.app(tmp_path_factory.mktemp("production-stage")), name, cfg=cfg, env_name=name)


@pytest.fixture(scope="session")
def cfg() -> OrgConfig:
    return load_config(ORG_CONFIGS["default"])


@pytest.fixture(scope="session")
def assembly(synthesized) -> Assembly:
    return synthesized("default")


@pytest.fixture(scope="session")
def template(assembly: Assembly):
    @cache
    def get(env_or_path: str, unit: str | None = None) -> Template:
        return assembly.template(f"{env_or_path}/{unit}" if unit else env_or_path)

    return get


_REPORT: dict[str, str] = {}


_OWNED_SESSION_DIR = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    # In the controller (or a run without workers), before any worker starts: the workers
    # inherit the variable, so they all share one directory (tests/shared.py).
    if not hasattr(config, "workerinput") and not os.environ.get(shared.SESSION_DIR):
        config.stash[_OWNED_SESSION_DIR] = shared.session_dir()


def _start_background_scans(config: pytest.Config) -> None:
    """`make synth`'s templates are on disk before any test runs, so their scans
    (tests/compliance/scanners.py) run beside the tests instead of holding a worker. Only for a run
    of the whole suite: a few files or a -k selection would not read the reports."""
    if (
        not hasattr(config, "workerinput")
        and _CLI_ASSEMBLY
        and _collects_everything(config)
        and not (config.option.keyword or config.option.collectonly)
    ):
        from tests.compliance import scanners

        cloud = CloudAssembly.load(Path(_CLI_ASSEMBLY), name=str(_CLI_ORG))
        scanners.start(scanners.scanned(cloud, environment_kinds(load_config(ORG_CONFIGS[str(_CLI_ORG)]))))


def pytest_sessionstart(session: pytest.Session) -> None:
    # Without workers, at once; with them, once a worker has collected (below).
    if not session.config.pluginmanager.hasplugin("dsession"):
        _start_background_scans(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    # The controller, when the first worker has collected the suite: started earlier, the scans
    # compete with the workers' collection, which on a fresh clone also compiles every module
    # (18 s instead of 6 s to the first test, measured). Later calls find them started.
    _start_background_scans(node.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    owned = config.stash.get(_OWNED_SESSION_DIR, None)
    if owned is not None:
        shared.stop_spawned()
        shutil.rmtree(owned, ignore_errors=True)
        del os.environ[shared.SESSION_DIR]


@pytest.fixture(scope="session")
def report():
    """Lines for the end-of-run summary (counts of acknowledgements, skips, throughput)."""

    def add(topic: str, line: str) -> None:
        _REPORT[topic] = line

    return add


def _collects_everything(config: pytest.Config) -> bool:
    invoked = config.invocation_params.dir
    return [(invoked / arg).resolve() for arg in config.args] == [ROOT / "tests"]


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    # Before every other implementation: -k/-m have deselected nothing yet, so a full run sees
    # every guard; a run of a few files cannot tell a missing guard from an uncollected one and
    # skips the check.
    if _collects_everything(config):
        config.stash[PROMISE_PROBLEMS] = _check_promises(items)
    yield
    # After every other implementation: pytest's own reordering groups the tests that share a
    # session-scoped parameter (the organization of `cloud_assembly`) across files.
    _order_files(items)


# What tests/promises.py finds wrong when the whole suite is collected, for the test that reports it
# (tests/unit/test_promises.py). A failing test, not a usage error: raised in an xdist worker, that
# ends the run with an INTERNALERROR naming neither the promise nor the guard.
PROMISE_PROBLEMS = pytest.StashKey[list[str]]()


def _check_promises(items: list[pytest.Item]) -> list[str]:
    found = promises.problems(promises.PROMISES, (ROOT / "README.md").read_text(), (item.nodeid for item in items))
    guards = sum(len(promise.guards) for promise in promises.PROMISES)
    _REPORT["README promises"] = (
        f"{len(promises.PROMISES)} promises quoted from the README, each guarded by named tests "
        f"({guards} guards; `make promises` prints the table)"
    )
    return found


def _order_files(items: list[pytest.Item]) -> None:
    """The order `make test`'s workers take whole files in (it runs xdist with
    --no-loadscope-reorder): files marked `waits` first, while the background scans
    (tests/compliance/scanners.py) can use the CPU they leave idle; then files marked `long`; then
    the others by their number of tests, largest first (xdist's own order). A long file started last
    would leave one worker running it alone while the other idles."""
    sizes: dict[Path, int] = {}
    for item in items:
        sizes[item.path] = sizes.get(item.path, 0) + 1

    def tier(item: pytest.Item) -> int:
        return 0 if item.get_closest_marker("waits") else 1 if item.get_closest_marker("long") else 2

    items.sort(key=lambda item: (tier(item), -sizes[item.path], str(item.path)))


def pytest_sessionfinish(session):
    # Under pytest-xdist each worker hands its lines to the controller, which prints the summary.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["report"] = dict(_REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    # `make test` distributes whole files (--dist loadfile), so each topic comes from one worker.
    _REPORT.update(getattr(node, "workeroutput", {}).get("report", {}))


def pytest_terminal_summary(terminalreporter):
    if _REPORT:
        terminalreporter.section("verification summary")
        for topic, line in sorted(_REPORT.items()):
            terminalreporter.write_line(f"{topic}: {line}")
