"""The Supabase component catalog: each service's ports, callers and mesh behaviour, once.

Everything that names a component's port or its peers derives from this table: the
Deployments' container and Service ports (`supabase/components.py`), Kong's upstreams
(`supabase/kong.py`), the NetworkPolicies (`supabase/network.py`), the Istio
AuthorizationPolicies, VirtualServices and DestinationRules (`mesh/`), and the
ServiceMonitors (`monitoring/scrape.py`). A new component is an entry here, its workload in
`supabase/components.py`, its image pin in `supabase/images.py` and, if the gateway exposes
it, its routes in `supabase/kong.py`.

It lives outside the `supabase` package because the mesh and monitoring charts read it and the
Supabase chart imports the mesh chart; it imports nothing from the charts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Component:
    name: str
    # The port the Service serves and callers dial (container port == Service port).
    port: int
    # Container port Prometheus scrapes; None: the component exports no metrics.
    metrics_port: int | None = None
    metrics_path: str = "/metrics"
    # Realtime's /metrics wants a JWT signed with its METRICS_JWT_SECRET.
    metrics_bearer_token: bool = False
    # Upper bound for one request through the mesh; None disables it (long-lived connections).
    timeout: str | None = "60s"
    retries: int = 2
    protocol: str = "http"
    # The components in the namespace this one calls, each on its `port`.
    calls: tuple[str, ...] = ()
    # Pod-to-pod ports among this component's own replicas (Realtime's Erlang cluster).
    peer_ports: tuple[int, ...] = ()

    def scrape_port(self) -> int:
        if self.metrics_port is None:
            raise ValueError(f"catalog: {self.name} has no metrics_port")
        return self.metrics_port


_COMPONENTS = (
    Component(
        name="kong",
        port=8000,
        # Kong's status listener: /status for the ALB health check and /metrics.
        metrics_port=8100,
        timeout="180s",
        calls=("auth", "rest", "rest-ro", "realtime", "storage", "meta", "studio", "functions"),
    ),
    Component(name="auth", port=9999, metrics_port=9100, timeout="30s"),
    Component(name="rest", port=3000, metrics_port=3001, calls=("pgbouncer",)),
    Component(name="rest-ro", port=3000, metrics_port=3001, calls=("pgbouncer",)),
    Component(
        name="realtime",
        port=4000,
        metrics_port=4000,
        metrics_bearer_token=True,
        # Websockets: a retry would replay a subscription, and a request timeout would cut
        # every socket; only the DestinationRule's idle timeout bounds the connection.
        timeout=None,
        retries=0,
        # Erlang distribution: epmd, the (pinned) distribution port and gen_rpc.
        peer_ports=(4369, 4370, 5369),
    ),
    Component(name="storage", port=5000, timeout="300s", calls=("rest", "imgproxy", "pgbouncer")),
    Component(name="imgproxy", port=5001, metrics_port=9464),
    Component(name="meta", port=8080),
    Component(name="studio", port=3000, calls=("kong", "meta")),
    # The edge runtime lets a function run up to 150 s; a retry could run one twice.
    Component(name="functions", port=9000, timeout="150s", retries=0, calls=("kong", "pgbouncer")),
    Component(name="pgbouncer", port=6432, metrics_port=9127, timeout=None, retries=0, protocol="tcp"),
)

CATALOG: dict[str, Component] = {c.name: c for c in _COMPONENTS}


def _check() -> None:
    for component in _COMPONENTS:
        unknown = set(component.calls) - set(CATALOG)
        if unknown:
            raise ValueError(f"catalog: {component.name} calls unknown components {sorted(unknown)}")


_check()


def callers(callee: str) -> tuple[str, ...]:
    return tuple(c.name for c in _COMPONENTS if callee in c.calls)
