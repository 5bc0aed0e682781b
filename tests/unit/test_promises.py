"""The README-promise registry's own check catches what it is there to catch."""

from __future__ import annotations

import pytest

from tests.conftest import PROMISE_PROBLEMS
from tests.promises import COMPONENT, Promise, problems, table

README = "The platform keeps prod data.\nEvery workload is\nhardened."
GUARDED = Promise(
    name="hardened",
    claim="Every workload is hardened.",
    level=COMPONENT,
    guards=("tests/unit/test_a.py::test_hardened", "tests/unit/test_b.py"),
)
COLLECTED = ("tests/unit/test_a.py::test_hardened[prod]", "tests/unit/test_b.py::test_anything")


def test_a_kept_promise_with_collected_guards_has_no_problems():
    assert problems([GUARDED], README, COLLECTED) == []


def test_a_reworded_readme_is_reported():
    assert "no longer says" in problems([GUARDED], "Workloads are hardened.", COLLECTED)[0]


def test_a_renamed_guard_is_reported():
    (found,) = problems([GUARDED], README, ("tests/unit/test_a.py::test_hardening", "tests/unit/test_b.py::test_x"))
    assert "tests/unit/test_a.py::test_hardened was not collected" in found


def test_a_guard_matches_whole_names_only():
    (found,) = problems([GUARDED], README, ("tests/unit/test_a.py::test_hardened_more", "tests/unit/test_b.py::t"))
    assert "test_hardened was not collected" in found


def test_a_guard_may_name_one_case_of_a_parametrized_test():
    one_case = Promise(
        name="p", claim="prod data", level=COMPONENT, guards=("tests/unit/test_a.py::test_hardened[prod]",)
    )
    assert problems([one_case], README, COLLECTED) == []
    (found,) = problems([one_case], README, ("tests/unit/test_a.py::test_hardened[dev]",))
    assert "test_hardened[prod] was not collected" in found


def test_an_unguarded_promise_and_a_bad_level_are_reported():
    bad = Promise(name="x", claim="prod data", level="vibes", guards=())
    assert len(problems([bad], README, COLLECTED)) == 2


def test_table_lists_every_guard():
    assert "`tests/unit/test_b.py`" in table([GUARDED])


def test_a_promise_guarded_only_by_a_snapshot_is_reported():
    snapshot_only = Promise(
        name="s",
        claim="prod data",
        level=COMPONENT,
        guards=("tests/snapshot/test_templates.py::test_template_snapshots",),
    )
    (found,) = problems([snapshot_only], README, ("tests/snapshot/test_templates.py::test_template_snapshots[x]",))
    assert "not a guard" in found


def test_the_registry_matches_the_readme_and_the_suite(request):
    found = request.config.stash.get(PROMISE_PROBLEMS, None)
    if found is None:
        pytest.skip("checked only when the whole suite is collected: a few files cannot tell a missing guard")
    assert not found, "tests/promises.py no longer matches the README or the suite:\n  " + "\n  ".join(found)
