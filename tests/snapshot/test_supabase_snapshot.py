"""Snapshots of the rendered Supabase charts of the production environment: a refactoring aid
that shows any manifest change in review (behaviours are asserted in tests/unit and
tests/integration)."""

from __future__ import annotations

import pytest

from config.loader import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.supabase.chart import SUPABASE_CHART_IDS, render_supabase
from tests.snapshot.test_templates import SNAPSHOT_ENV


@pytest.fixture(scope="module", params=[SNAPSHOT_ENV])
def rendered(request):
    cfg = load_config()
    return request.param, render_supabase(cfg, request.param, from_config(cfg, request.param))


@pytest.mark.parametrize("chart_id", SUPABASE_CHART_IDS)
def test_chart_snapshot(rendered, chart_id, snapshot):
    _, charts = rendered
    assert charts[chart_id] == snapshot
