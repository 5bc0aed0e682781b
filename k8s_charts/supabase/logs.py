"""What the Supabase services write to stdout/stderr, how Fluent Bit turns it into fields, and the
CloudWatch Logs Insights queries an operator starts from.

Formats, per pinned image (checked against upstream at the tags in images.py):
- GoTrue: one JSON object per line (logrus JSONFormatter, keys sorted, `time` RFC 3339 UTC);
  each request ends with `msg: "request completed"`, `status`, `path`, `duration` (ns) and, on
  errors, `error_code` (supabase/auth internal/observability/logging.go, request-logger.go).
- Storage API and postgres-meta: pino JSON lines.
- Kong: the bundled file-log plugin writes kong.log.serialize() as one JSON object per request
  (`route.name`, `response.status`, `latencies.request` in ms; Kong kong/pdk/log.lua); see
  kong.py for what is removed from it before it is written.
- PostgREST: Apache combined lines from wai-extra's request logger, the authenticated role as
  the user (PostgREST src/PostgREST/Logger.hs); no durations, so slow requests are measured at Kong.
- Realtime: Elixir Logger text, "$time $metadata[$level] $message" with metadata keys request_id,
  project, external_id, application_name, sub, error_code in that order (supabase/realtime
  config/config.exs); refusals and shutdowns of sockets and channels carry `error_code`
  (lib/realtime_web/channels/realtime_channel.ex, user_socket.ex).

Fluent Bit's kubernetes filter merges a JSON line into the record under MERGE_KEY by itself
(Merge_Log). A line that is not JSON is parsed by the parser its pod suggests with the
`fluentbit.io/parser-<container>` annotation (K8S-Logging.Parser), from PARSERS below. Records
reach CloudWatch Logs as JSON, so Logs Insights sees `data.status`, `kubernetes.container_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from k8s_charts.supabase import images, kong
from k8s_charts.supabase.props import SupabaseProps

# Where the kubernetes filter puts a parsed line's fields (Merge_Log_Key).
MERGE_KEY = "data"
# K8S-Logging.Parser reads this pod annotation, suffixed with the container it applies to:
# https://docs.fluentbit.io/manual/pipeline/filters/kubernetes#kubernetes-annotations
PARSER_ANNOTATION = "fluentbit.io/parser"


@dataclass(frozen=True, kw_only=True)
class Parser:
    """A Fluent Bit regex parser (classic [PARSER] section); `types` casts captured fields."""

    name: str
    regex: str
    types: tuple[tuple[str, str], ...] = ()

    def conf(self) -> str:
        lines = ["[PARSER]", f"    Name   {self.name}", "    Format regex", f"    Regex  {self.regex}"]
        if self.types:
            lines.append("    Types  " + " ".join(f"{k}:{v}" for k, v in self.types))
        return "\n".join(lines)

    def parse(self, line: str) -> dict[str, Any] | None:
        """What the parser yields for `line` (Onigmo's (?<name>) groups in Python's spelling)."""
        match = re.match(self.regex.replace("(?<", "(?P<"), line)
        if match is None:
            return None
        record: dict[str, Any] = {k: v for k, v in match.groupdict().items() if v is not None}
        for key, kind in self.types:
            if key in record and kind == "integer":
                record[key] = int(record[key]) if record[key].isdigit() else record[key]
        return record


# Capture names avoid `time`: a parser's Time_Key defaults to it.
POSTGREST = Parser(
    name="supabase-postgrest",
    regex=(
        r'^(?<client>[^ ]*) [^ ]* (?<role>[^ ]*) \[(?<logged_at>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" '
        r'(?<status>[0-9]{3}) (?<size>[^ ]*)(?: "(?<referer>[^"]*)" "(?<agent>[^"]*)")?$'
    ),
    types=(("status", "integer"),),
)
REALTIME = Parser(
    name="supabase-realtime",
    regex=(
        r"^(?<logged_at>\d{2}:\d{2}:\d{2}\.\d{3}) (?<metadata>(?:[a-z_]+=\S+ )*?)(?:error_code=(?<error_code>\S+) )?"
        r"\[(?<level>[a-z]+)\] (?<msg>.*)$"
    ),
)
PARSERS = (POSTGREST, REALTIME)
# The log format is the image's: every container running one of these gets its parser.
PARSER_BY_IMAGE: dict[str, Parser] = {images.REST.repository: POSTGREST, images.REALTIME.repository: REALTIME}


def parser_annotations(containers: list[tuple[str, str]]) -> dict[str, str]:
    """Pod annotations for (container name, image repository) pairs whose lines are not JSON."""
    return {
        f"{PARSER_ANNOTATION}-{name}": PARSER_BY_IMAGE[repository].name
        for name, repository in containers
        if repository in PARSER_BY_IMAGE
    }


def parsers_conf() -> str:
    return "\n\n".join(p.conf() for p in PARSERS) + "\n"


# --- saved Logs Insights queries ---------------------------------------------------------------

# Realtime error codes that refuse or close a socket or a channel (realtime_channel.ex,
# user_socket.ex and RealtimeChannel.Logging at v2.102.3).
REALTIME_DISCONNECT_CODES = (
    "ChannelShutdown",
    "TenantNotFound",
    "ConnectionRateLimitReached",
    "JoinsRateLimitReached",
    "ClientJoinRateLimitReached",
    "InvalidJWTToken",
    "MalformedJWT",
    "JwtSignatureError",
    "Unauthorized",
    "UnableToConnectToProject",
    "DatabaseLackOfConnections",
    "ErrorConnectingToWebsocket",
    "RealtimeDisabledForTenant",
)
# The API latency objective's threshold (k8s_charts/monitoring/rules.py LATENCY_THRESHOLD_MS).
SLOW_REQUEST_MS = 1000


@dataclass(frozen=True, kw_only=True)
class Condition:
    field: str
    op: str  # "=", ">=", "<", ">", "in", "like"
    value: Any

    def render(self) -> str:
        if self.op == "in":
            return f"{self.field} in [{', '.join(_literal(v) for v in self.value)}]"
        if self.op == "like":
            return f"{self.field} like /{self.value}/"
        return f"{self.field} {self.op} {_literal(self.value)}"

    def holds(self, record: dict[str, Any]) -> bool:
        value = flatten(record).get(self.field)
        if value is None:
            return False
        if self.op == "=":
            return bool(value == self.value)
        if self.op == "in":
            return value in self.value
        if self.op == "like":
            return re.search(self.value, str(value)) is not None
        if not isinstance(value, int | float):
            return False
        return {">=": value >= self.value, "<": value < self.value, ">": value > self.value}[self.op]


def _literal(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


@dataclass(frozen=True, kw_only=True)
class SavedQuery:
    """A Logs Insights query as data, so a test can run its filter on sample records.

    Every condition in `all_of` must hold, and at least one of `any_of` when it is not empty.
    """

    name: str
    container: str
    all_of: tuple[Condition, ...]
    any_of: tuple[Condition, ...] = ()
    fields: tuple[str, ...] = ()
    stats_by: tuple[str, ...] = ()
    sort: str = ""

    def render(self) -> str:
        where = [Condition(field="kubernetes.container_name", op="=", value=self.container), *self.all_of]
        text = "filter " + " and ".join(c.render() for c in where)
        if self.any_of:
            text += " and (" + " or ".join(c.render() for c in self.any_of) + ")"
        lines = [f"fields @timestamp, {', '.join(self.fields)}"] if self.fields else []
        lines.append(text)
        if self.stats_by:
            lines.append(f"stats count(*) as requests by {', '.join(self.stats_by)}")
            lines.append("sort requests desc")
        elif self.sort:
            lines.append(f"sort {self.sort} desc")
            lines.append("limit 100")
        return "\n| ".join(lines)

    def matches(self, record: dict[str, Any]) -> bool:
        if record.get("kubernetes", {}).get("container_name") != self.container:
            return False
        return all(c.holds(record) for c in self.all_of) and (
            not self.any_of or any(c.holds(record) for c in self.any_of)
        )

    @property
    def referenced_fields(self) -> set[str]:
        return {c.field for c in (*self.all_of, *self.any_of)} | set(self.fields) | set(self.stats_by)


def _f(path: str) -> str:
    return f"{MERGE_KEY}.{path}"


# The Deployments running PostgREST: the writer and the read-only one on the replicas.
POSTGREST_COMPONENTS = ("rest", "rest-ro")


def saved_queries(props: SupabaseProps) -> tuple[SavedQuery, ...]:
    """The four incident queries, with route names taken from Kong's route table."""
    rest_routes = tuple(r.name for r in kong.routes(props) if r.component in POSTGREST_COMPONENTS)
    return (
        SavedQuery(
            name="auth-failures",
            container="auth",
            all_of=(
                Condition(field=_f("msg"), op="=", value="request completed"),
                Condition(field=_f("status"), op=">=", value=400),
                Condition(field=_f("status"), op="<", value=500),
            ),
            stats_by=(_f("path"), _f("status"), _f("error_code")),
        ),
        SavedQuery(
            name="5xx-by-route",
            container="kong",
            all_of=(Condition(field=_f("response.status"), op=">=", value=500),),
            stats_by=(_f("route.name"), _f("response.status")),
        ),
        SavedQuery(
            name="slow-postgrest-requests",
            container="kong",
            all_of=(
                Condition(field=_f("route.name"), op="in", value=rest_routes),
                Condition(field=_f("latencies.request"), op=">", value=SLOW_REQUEST_MS),
            ),
            fields=(
                _f("route.name"),
                _f("request.method"),
                _f("request.uri"),
                _f("response.status"),
                _f("latencies.request"),
                _f("latencies.proxy"),
            ),
            sort=_f("latencies.request"),
        ),
        SavedQuery(
            name="realtime-disconnects",
            container="realtime",
            all_of=(),
            any_of=(
                Condition(field=_f("error_code"), op="in", value=REALTIME_DISCONNECT_CODES),
                Condition(field=_f("msg"), op="like", value="^Disconnecting all sockets"),
            ),
            stats_by=(_f("error_code"), _f("level")),
        ),
    )


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Logs Insights' names for a JSON event's fields: nested keys joined with dots."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
