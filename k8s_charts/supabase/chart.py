"""Chart `supabase`: every Supabase service, its secrets, policies and the public Ingress."""

from __future__ import annotations

import cdk8s
from constructs import Construct

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.supabase.bootstrap import SupabaseDbBootstrapChart
from k8s_charts.supabase.components import add_components
from k8s_charts.supabase.ingress import add_ingress
from k8s_charts.supabase.migrate import SupabaseDbMigrateChart
from k8s_charts.supabase.network import add_network_policies
from k8s_charts.supabase.props import SupabaseProps

BOOTSTRAP_CHART_ID = "supabase-db-bootstrap"
MIGRATE_CHART_ID = "supabase-db-migrate"
CHART_ID = "supabase"
# Every chart supabase_charts returns, in apply order.
SUPABASE_CHART_IDS = (BOOTSTRAP_CHART_ID, MIGRATE_CHART_ID, CHART_ID)


class SupabaseChart(cdk8s.Chart):
    """Expects namespace `supabase` (created by SupabaseDbBootstrapChart) to exist."""

    def __init__(self, scope: Construct, id_: str, *, props: SupabaseProps) -> None:
        super().__init__(scope, id_)
        add_components(self, props)
        add_network_policies(self, props)
        add_ingress(self, props)


def supabase_charts(app: cdk8s.App, cfg: OrgConfig, env_name: str, values: AwsValues) -> list[cdk8s.Chart]:
    """CHART_FACTORIES entry: bootstrap, the application's migrations, then the services
    (apply in this order; each waits for the Jobs of the one before)."""
    props = SupabaseProps.from_config(cfg, env_name, values)
    bootstrap = SupabaseDbBootstrapChart(app, BOOTSTRAP_CHART_ID, props=props)
    migrate = SupabaseDbMigrateChart(app, MIGRATE_CHART_ID, props=props)
    migrate.add_dependency(bootstrap)
    services = SupabaseChart(app, CHART_ID, props=props)
    services.add_dependency(bootstrap, migrate)
    return [bootstrap, migrate, services]


def render_supabase(cfg: OrgConfig, env_name: str, values: AwsValues) -> dict[str, list[dict]]:
    """Chart id -> objects of the three Supabase charts alone (for tests and manifest diffs)."""
    app = cdk8s.App()
    return {chart.node.id: chart.to_json() for chart in supabase_charts(app, cfg, env_name, values)}
