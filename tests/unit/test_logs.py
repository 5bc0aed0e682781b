"""The services' log lines, as Fluent Bit turns them into fields, and the saved Logs Insights
queries run on them.

Sample lines (tests/fixtures/log_samples.yaml) follow the formats of the pinned images, each
with the upstream code that writes it. A line goes through the same steps as on a node: the
parser its rendered pod annotation names (read back from the rendered parsers file), else the
JSON merge of the kubernetes filter, under the merge key. Each query's filter is then run on
every sample: it must select exactly the lines the fixture says, and every field it names must
exist in those lines. Kong's lines are its serializer's records with the project's file-log
redactions applied, and must then hold no key or cookie.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from config import yamlio
from config.loader import load_config
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import kong, logs
from k8s_charts.supabase.props import SupabaseProps
from tests import fluent_bit_conf, rendered

SAMPLES = yamlio.load((Path(__file__).resolve().parents[1] / "fixtures" / "log_samples.yaml").read_text())
ENV = "prod"


@cache
def props() -> SupabaseProps:
    cfg = load_config()
    return SupabaseProps.from_config(cfg, ENV, from_config(cfg, ENV))


@cache
def pod_annotations() -> dict[str, dict[str, str]]:
    """Container name -> its pod template's annotations, from the rendered Supabase chart."""
    out: dict[str, dict[str, str]] = {}
    for obj in rendered.supabase(ENV)["supabase"]:
        if obj["kind"] != "Deployment":
            continue
        template = obj["spec"]["template"]
        for container in template["spec"]["containers"]:
            out[container["name"]] = template["metadata"].get("annotations", {})
    return out


def rendered_parsers() -> dict[str, logs.Parser]:
    """The parsers as Fluent Bit reads them from the file the agent is given."""
    found = {}
    for section in fluent_bit_conf.read(logs.parsers_conf()):
        assert section.kind == "PARSER"
        assert section.entries["format"] == "regex"
        types = tuple(tuple(t.split(":", 1)) for t in section.entries.get("types", "").split())
        found[section.name] = logs.Parser(name=section.name, regex=section.entries["regex"], types=types)  # type: ignore[arg-type]
    return found


def fluent_bit_record(container: str, line: str) -> dict[str, Any]:
    """The record the kubernetes filter hands to the output (Merge_Log On, Keep_Log Off)."""
    record: dict[str, Any] = {"kubernetes": {"container_name": container, "namespace_name": "supabase"}}
    suggested = pod_annotations()[container].get(f"{logs.PARSER_ANNOTATION}-{container}")
    parsed: Any
    if suggested:
        parsed = rendered_parsers()[suggested].parse(line)
    else:
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            parsed = None
    if isinstance(parsed, dict):
        record[logs.MERGE_KEY] = parsed
    else:
        record["log"] = line
    return record


def redact(serialized: dict[str, Any]) -> dict[str, Any]:
    """file-log's custom_fields_by_lua over kong.log.serialize(): each entry sets a dotted field;
    `return nil` deletes it (kong.log.set_serialize_value)."""
    out = json.loads(json.dumps(serialized))
    for dotted, code in kong.ACCESS_LOG_REDACTIONS.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        if code == "return nil":
            node.pop(leaf, None)
        elif code == "return kong.request.get_path()":
            node[leaf] = serialized["request"]["uri"].split("?", 1)[0]
        else:
            raise AssertionError(f"no model of {code!r} for {dotted}")
    return out


def samples() -> list[tuple[str, dict[str, Any], set[str]]]:
    """(label, record, queries that must select it) for every sample."""
    out = []
    for fmt in SAMPLES["formats"]:
        for i, entry in enumerate(fmt["lines"]):
            out.append(
                (f"{fmt['container']}-{i}", fluent_bit_record(fmt["container"], entry["line"]), set(entry["queries"]))
            )
    for i, entry in enumerate(SAMPLES["kong"]["records"]):
        line = json.dumps(redact(entry["record"]))
        out.append((f"kong-{i}", fluent_bit_record("kong", line), set(entry["queries"])))
    return out


QUERIES = {q.name: q for q in logs.saved_queries(props())}


def test_every_query_has_samples_that_select_it() -> None:
    selected = {name for _, _, names in samples() for name in names}
    assert selected == set(QUERIES)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_selects_exactly_its_samples(name: str) -> None:
    query = QUERIES[name]
    for label, record, expected in samples():
        assert query.matches(record) == (name in expected), (label, query.render(), record)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_fields_exist_in_the_lines_it_selects(name: str) -> None:
    query = QUERIES[name]
    for label, record, expected in samples():
        if name not in expected:
            continue
        fields = logs.flatten(record)
        # A by-field may be absent on some lines (Logs Insights groups them under null), never on all.
        missing = {f for f in query.referenced_fields - set(query.stats_by) if f not in fields}
        assert not missing, (label, missing)
    for by in query.stats_by:
        assert any(by in logs.flatten(r) for _, r, e in samples() if name in e), by


def test_query_with_a_misspelt_field_selects_nothing() -> None:
    query = QUERIES["auth-failures"]
    broken = logs.SavedQuery(
        name=query.name,
        container=query.container,
        all_of=(logs.Condition(field="data.statuscode", op=">=", value=400),),
    )
    assert not any(broken.matches(r) for _, r, _ in samples())


def test_slow_postgrest_query_names_every_route_to_postgrest() -> None:
    rest = {r.name for r in kong.routes(props()) if r.component in logs.POSTGREST_COMPONENTS}
    condition = next(c for c in QUERIES["slow-postgrest-requests"].all_of if c.field == "data.route.name")
    # The OpenAPI root (secret keys only), reads on the replicas, writes on the primary.
    assert set(condition.value) == rest and len(rest) == 3


def test_queries_render_as_logs_insights_text() -> None:
    text = QUERIES["slow-postgrest-requests"].render()
    assert text.startswith("fields @timestamp, data.route.name")
    assert (
        '| filter kubernetes.container_name = "kong" and data.route.name in ["rest-v1-openapi", "rest-v1-read", "rest-v1-write"]'
        in text
    )
    assert f"data.latencies.request > {logs.SLOW_REQUEST_MS}" in text
    assert "| sort data.latencies.request desc" in text
    disconnects = QUERIES["realtime-disconnects"].render()
    assert (
        'and (data.error_code in ["ChannelShutdown"' in disconnects
        and "data.msg like /^Disconnecting all sockets/)" in disconnects
    )


def test_slow_threshold_is_the_latency_objectives() -> None:
    from k8s_charts.monitoring.rules import LATENCY_THRESHOLD_MS

    assert logs.SLOW_REQUEST_MS == LATENCY_THRESHOLD_MS


@pytest.mark.parametrize(
    ("container", "fields"),
    [(f["container"], e["fields"]) for f in SAMPLES["formats"] for e in f["lines"] if "fields" in e],
)
def test_lines_become_fields(container: str, fields: dict[str, Any]) -> None:
    fmt = next(f for f in SAMPLES["formats"] if f["container"] == container)
    line = next(e["line"] for e in fmt["lines"] if e.get("fields") == fields)
    assert {k: logs.flatten(fluent_bit_record(container, line)).get(k) for k in fields} == fields


def test_text_formats_get_their_parser_by_annotation_and_json_formats_none() -> None:
    annotations = pod_annotations()
    suggested = {
        c: a[f"{logs.PARSER_ANNOTATION}-{c}"] for c, a in annotations.items() if f"{logs.PARSER_ANNOTATION}-{c}" in a
    }
    assert suggested == {"rest": "supabase-postgrest", "rest-ro": "supabase-postgrest", "realtime": "supabase-realtime"}
    assert set(suggested.values()) <= set(rendered_parsers())


def test_realtime_metadata_before_the_level_is_kept() -> None:
    record = fluent_bit_record("realtime", SAMPLES["formats"][1]["lines"][1]["line"])
    assert record["data"]["error_code"] == "InvalidJWTToken"
    assert record["data"]["level"] == "warning"
    assert "sub=6f1b2c3d" in record["data"]["metadata"]


def test_unparsable_line_is_shipped_whole() -> None:
    record = fluent_bit_record("realtime", "** (RuntimeError) boom")
    assert record["log"] == "** (RuntimeError) boom" and logs.MERGE_KEY not in record


def test_kong_access_log_carries_no_key_or_cookie() -> None:
    secret = SAMPLES["kong"]["secret"]
    for entry in SAMPLES["kong"]["records"]:
        line = json.dumps(redact(entry["record"]))
        assert secret not in line
        assert "apikey" not in line and "cookie" not in line.lower()


def test_unredacted_kong_record_would_leak() -> None:
    raw = json.dumps(SAMPLES["kong"]["records"][0]["record"])
    assert SAMPLES["kong"]["secret"] in raw


def test_kong_writes_its_access_log_with_file_log_only() -> None:
    config = kong.declarative_config(props(), {v.var: "x" for v in kong.secret_values(props())})
    file_log = [p for p in config["plugins"] if p["name"] == "file-log"]
    assert file_log == [
        {
            "name": "file-log",
            "config": {"path": "/dev/stdout", "reopen": False, "custom_fields_by_lua": kong.ACCESS_LOG_REDACTIONS},
        }
    ]
    env = kong.kong_env(props())
    assert "file-log" in env["KONG_PLUGINS"].split(",")
    assert env["KONG_PROXY_ACCESS_LOG"] == "off"


def test_studio_offers_no_logs_without_an_analytics_backend() -> None:
    cfg = load_config()
    assert not cfg.environments[ENV].observability.studio_log_explorer
    studio = next(
        o for o in rendered.supabase(ENV)["supabase"] if o["kind"] == "Deployment" and o["metadata"]["name"] == "studio"
    )
    env = {e["name"]: e.get("value") for e in studio["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["NEXT_PUBLIC_ENABLE_LOGS"] == "false"
    assert not {n for n in env if n.startswith("LOGFLARE_") or n == "NEXT_ANALYTICS_BACKEND_PROVIDER"}
