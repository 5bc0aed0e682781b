"""Typed inputs of the Supabase charts.

`SupabaseProps.from_config` is the one place that reads the organization config; the charts
only see these frozen values plus `AwsValues` (what the AWS side knows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from config.model import OrgConfig
from k8s_charts.aws_values import AwsValues
from k8s_charts.catalog import CATALOG

NAMESPACE = "supabase"
PART_OF = "supabase"
CLUSTER_DOMAIN = "svc.cluster.local"
SECRET_STORE = "aws-secrets-manager"
# Sources send every span here; the collector (k8s_charts/monitoring/tracing.py) is the one place
# that samples, keeping Observability.tracing_sample_ratio of the traces by trace id, so a trace
# is kept or dropped whole. A source sampling as well would square the ratio.
OTLP_HTTP_ENDPOINT = "http://otel-collector.observability.svc:4318"
OTLP_TRACES_ENDPOINT = f"{OTLP_HTTP_ENDPOINT}/v1/traces"
OBSERVABILITY_NAMESPACE = "observability"
AUTH_PATH = "/auth/v1"

COMPONENTS = tuple(CATALOG)


def service_host(component: str) -> str:
    return f"{component}.{NAMESPACE}.{CLUSTER_DOMAIN}"


@dataclass(frozen=True, kw_only=True)
class OAuthProviderProps:
    name: str
    client_id: str
    secret_name: str  # full Secrets Manager name; the secret string is the client secret


@dataclass(frozen=True, kw_only=True)
class AuthProps:
    site_url: str
    additional_redirect_urls: tuple[str, ...] = ()
    disable_signup: bool = False
    password_min_length: int = 12
    jwt_expiry_seconds: int = 3600
    smtp_sender: str
    smtp_sender_name: str = "Supabase"
    saml_enabled: bool = False
    oauth_providers: tuple[OAuthProviderProps, ...] = ()
    legacy_api_keys: bool = True


@dataclass(frozen=True, kw_only=True)
class Scaling:
    """Replica floor and HPA ceiling of one component."""

    replicas: int
    max_replicas: int

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= self.max_replicas:
            raise ValueError(f"need 1 <= replicas ({self.replicas}) <= max_replicas ({self.max_replicas})")


def _default_scaling(production: bool) -> dict[str, Scaling]:
    if production:
        base = {c: Scaling(replicas=3, max_replicas=10) for c in COMPONENTS}
        base.update(
            meta=Scaling(replicas=2, max_replicas=2),
            studio=Scaling(replicas=2, max_replicas=2),
            imgproxy=Scaling(replicas=2, max_replicas=6),
            pgbouncer=Scaling(replicas=3, max_replicas=3),
        )
        return base
    base = {c: Scaling(replicas=1, max_replicas=3) for c in COMPONENTS}
    base.update(
        meta=Scaling(replicas=1, max_replicas=1),
        studio=Scaling(replicas=1, max_replicas=1),
        # Every database connection goes through PgBouncer: two keep it up across a node drain.
        pgbouncer=Scaling(replicas=2, max_replicas=2),
    )
    return base


@dataclass(frozen=True, kw_only=True)
class SupabaseProps:
    values: AwsValues
    auth: AuthProps
    scaling: dict[str, Scaling] = field(default_factory=dict)
    # Sidecar injection for the namespace (features.istio); the mesh chart holds the policies.
    istio: bool = False
    organization_name: str = "Default Organization"
    project_name: str = "Default Project"
    rate_limit_per_minute: int = 600
    file_size_limit_bytes: int = 50 * 1024 * 1024
    pgrst_max_rows: int = 1000

    def __post_init__(self) -> None:
        merged = {**_default_scaling(self.values.production), **self.scaling}
        unknown = set(merged) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components in scaling: {sorted(unknown)}")
        object.__setattr__(self, "scaling", merged)

    @property
    def api_url(self) -> str:
        return f"https://{self.values.api_host}"

    @property
    def auth_url(self) -> str:
        """GoTrue's public URL (API_EXTERNAL_URL, and its JWT issuer): upstream's layout since
        2026 puts every auth endpoint, OAuth callbacks and SAML included, under /auth/v1."""
        return f"{self.api_url}{AUTH_PATH}"

    def remote_key(self, key: str) -> str:
        return f"{self.values.secret_prefix}{key}"

    @classmethod
    def from_config(cls, cfg: OrgConfig, env_name: str, values: AwsValues) -> SupabaseProps:
        env = cfg.environments[env_name]
        auth = env.auth
        return cls(
            values=values,
            auth=AuthProps(
                site_url=auth.site_url,
                additional_redirect_urls=tuple(auth.additional_redirect_urls),
                disable_signup=auth.disable_signup,
                password_min_length=auth.password_min_length,
                jwt_expiry_seconds=auth.jwt_expiry_seconds,
                smtp_sender=auth.smtp_sender,
                smtp_sender_name=cfg.project,
                saml_enabled=auth.saml_enabled,
                oauth_providers=tuple(
                    OAuthProviderProps(name=p.name, client_id=p.client_id, secret_name=p.secret_name)
                    for p in auth.oauth_providers
                ),
                legacy_api_keys=auth.legacy_api_keys,
            ),
            istio=env.features.istio,
            organization_name=cfg.project,
            project_name=f"{cfg.project}-{env_name}",
        )
