"""`make local`'s Compose project against the Compose Specification and against the cluster.

The schema is compose-spec/compose-spec's own, vendored unmodified
(tests/fixtures/upstream/compose-spec/SOURCE). The cluster side is the Supabase chart of the
same environment rendered as `make synth` renders it; every difference between a service's
environment and its Deployment's must be claimed in scripts/local/differences.py.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

import jsonschema
import jwt
import pytest
from cryptography import x509

from config import yamlio
from config.loader import load_config
from config.model import PUBLIC_DEMO_VALUES
from config.naming import SecretKeys
from k8s_charts.aws_values import from_config
from k8s_charts.supabase import components, images, kong, rds_ca
from k8s_charts.supabase.chart import BOOTSTRAP_CHART_ID, CHART_ID, render_supabase
from k8s_charts.supabase.props import SupabaseProps
from ops.mint_api_keys import keyset
from ops.mint_api_keys.handler import verified_claims
from scripts import local
from scripts.local.differences import LOCAL_DIFFERENCES, MAIL_SERVICE

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "upstream" / "compose-spec" / "compose-spec.json"
EXTRA_SERVICES = {local.DB_SERVICE, MAIL_SERVICE}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cfg = load_config()
    out = tmp_path_factory.mktemp("local")
    project = local.write_project(cfg, out / "project", state_dir=out / "state")
    text = (out / "project" / local.COMPOSE_FILE).read_text()
    return cfg, out, project, yamlio.load(text)


@pytest.fixture(scope="module")
def cluster(written):
    """The chart as `make synth` renders it for the same environment (not the renderer's copy)."""
    cfg = written[0]
    return render_supabase(cfg, local.LOCAL_ENV, from_config(cfg, local.LOCAL_ENV))


def _unescape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    return value


def _containers(objects):
    for o in objects:
        if o["kind"] == "Deployment":
            for index, c in enumerate(o["spec"]["template"]["spec"]["containers"]):
                yield (
                    o["metadata"]["name"],
                    (o["metadata"]["name"] if index == 0 else f"{o['metadata']['name']}-{c['name']}"),
                    c,
                )


def _cluster_env(container, secrets_by_name, config_maps) -> dict[str, str]:
    """The container's env as the kubelet would set it in the cluster, downward API unknown."""
    env: dict[str, str] = {}
    for e in container.get("env", []):
        source = e.get("valueFrom", {})
        if "value" in e:
            value = e["value"]
        elif "secretKeyRef" in source:
            value = secrets_by_name[source["secretKeyRef"]["name"]][source["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in source:
            value = config_maps[source["configMapKeyRef"]["name"]]["data"][source["configMapKeyRef"]["key"]]
        else:
            value = f"<downward API {json.dumps(source)}>"
        env[e["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)
    return env


def env_differences(cluster_objects, compose, slots, values) -> set[tuple[str, str]]:
    """(component, env var) wherever the Compose service's env differs from the cluster's."""
    secrets_by_name = local.rendered_secrets(cluster_objects, values, slots)
    config_maps = {o["metadata"]["name"]: o for o in cluster_objects if o["kind"] == "ConfigMap"}
    found = set()
    for component, service, container in _containers(cluster_objects):
        expected = _cluster_env(container, secrets_by_name, config_maps)
        actual = _unescape(compose["services"][service].get("environment", {}))
        found |= {(component, k) for k in expected.keys() | actual.keys() if expected.get(k) != actual.get(k)}
    return found


DOCUMENTED = {(c, v) for d in LOCAL_DIFFERENCES for c, v, _ in d.env}


# --- The Compose Specification ---------------------------------------------------------------


def test_rendered_file_is_valid_against_the_compose_spec_schema(written):
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(written[3])]
    assert not errors


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["kong"].update(enviroment={"A": "1"}),
        lambda c: c["services"]["db"]["networks"]["supabase"].update(aliases="db.example"),
        lambda c: c["services"]["auth"].update(depends_on={"db": {"condition": "whenever"}}),
    ],
    ids=["misspelled-key", "aliases-not-a-list", "unknown-condition"],
)
def test_the_schema_refuses_a_broken_file(written, break_it):
    broken = copy.deepcopy(written[3])
    break_it(broken)
    assert list(jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).iter_errors(broken))


def test_every_dollar_is_escaped_from_compose_interpolation(written):
    # Compose would substitute $VAR / ${VAR} from the host's shell; $$ is a literal dollar.
    text = json.dumps(written[3]["services"])
    assert not re.search(r"\$(?!\$)", text.replace("$$", ""))
    realtime = _unescape(written[3]["services"]["realtime"])
    assert realtime["entrypoint"] == list(components.REALTIME_COMMAND)
    assert realtime["command"] == list(components.REALTIME_ARGS)


# --- Compose's rules beyond the schema (compose-spec 05-services.md / 07-volumes.md, same commit) ---


def compose_rule_violations(compose: dict, project_dir: Path) -> list[str]:
    """What Compose (or the engine under it) would refuse or silently get wrong."""
    found = []
    services, networks, volumes = compose["services"], compose.get("networks", {}), compose.get("volumes", {})
    published: dict[str, str] = {}
    for name, s in services.items():
        mode = s.get("network_mode", "")
        # "network_mode ... When set, the networks attribute is not allowed and Compose rejects any
        # Compose file containing both attributes."
        if mode and "networks" in s:
            found.append(f"{name}: network_mode with networks")
        # The engine refuses both on a container that joins another's network namespace (moby
        # runconfig/errors.go: ErrConflictNetworkPublishPorts, ErrConflictNetworkExposePorts).
        if mode.startswith("service:") and ({"ports", "expose"} & set(s)):
            found.append(f"{name}: ports/expose with {mode}")
        if mode.startswith("service:") and mode.removeprefix("service:") not in services:
            found.append(f"{name}: {mode} names no service")
        for net, attachment in (s.get("networks") or {}).items():
            # "The corresponding network configuration in the top-level networks section must have an
            # ipam attribute with subnet configurations covering each static address."
            address = (attachment or {}).get("ipv4_address")
            subnets = [
                ipaddress.ip_network(c["subnet"]) for c in networks.get(net, {}).get("ipam", {}).get("config", [])
            ]
            if net not in networks:
                found.append(f"{name}: network {net} is not declared")
            if address and not any(ipaddress.ip_address(address) in n for n in subnets):
                found.append(f"{name}: {address} outside the ipam subnets of {net}")
        for dep, condition in (s.get("depends_on") or {}).items():
            if dep not in services:
                found.append(f"{name}: depends_on unknown service {dep}")
            # service_healthy: "as indicated by healthcheck" - a dependency without one never is.
            elif condition.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                found.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
        for volume in s.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                # "short syntax creates a directory at the source path on the host if it doesn't
                # exist": a missing file mount would silently become a directory.
                path = project_dir / source if source.startswith(".") else Path(source)
                if not path.exists():
                    found.append(f"{name}: bind source {source} does not exist")
            elif source not in volumes:
                found.append(f"{name}: named volume {source} is not declared (07-volumes.md)")
        for port in s.get("ports", []):
            host = port.rsplit(":", 1)[0]
            if host in published:
                found.append(f"{name}: host port {host} already published by {published[host]}")
            published[host] = name

    def visit(node: str, path: tuple[str, ...]) -> None:
        if node in path:
            found.append(f"depends_on cycle {' -> '.join((*path, node))}")
            return
        for dep in services.get(node, {}).get("depends_on") or {}:
            visit(dep, (*path, node))

    for name in services:
        visit(name, ())
    return found


def test_rendered_project_keeps_composes_rules(written):
    _, out, _, compose = written
    assert compose_rule_violations(compose, out / "project") == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda c: c["services"]["pgbouncer-exporter"].update(networks={"supabase": {}}), "network_mode with networks"),
        (lambda c: c["services"]["pgbouncer-exporter"].update(expose=["9127"]), "ports/expose with service:"),
        (
            lambda c: c["services"]["realtime"]["networks"]["supabase"].update(ipv4_address="10.0.0.9"),
            "outside the ipam",
        ),
        (
            lambda c: (
                c["services"]["mail"].pop("healthcheck", None)
                or c["services"]["auth"]["depends_on"].update(mail={"condition": "service_healthy"})
            ),
            "no healthcheck",
        ),
        (lambda c: c["services"]["db"]["volumes"].append("./files/db/missing.sh:/x.sh:ro"), "does not exist"),
        (lambda c: c["services"]["db"]["volumes"].append("undeclared:/y"), "is not declared"),
        (lambda c: c["services"]["mail"].update(ports=["127.0.0.1:54321:8025"]), "already published"),
        (lambda c: c["services"]["db"].update(depends_on={"auth": {"condition": "service_started"}}), "cycle"),
    ],
    ids=[
        "network-mode-and-networks",
        "expose-in-shared-network",
        "address-outside-subnet",
        "healthy-without-healthcheck",
        "missing-bind-source",
        "undeclared-volume",
        "host-port-twice",
        "cycle",
    ],
)
def test_compose_rules_catch_a_broken_project(written, break_it, expected):
    _, out, _, compose = written
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert any(expected in v for v in compose_rule_violations(broken, out / "project"))


# --- One source of truth ---------------------------------------------------------------------


def test_every_deployment_container_is_a_service_and_nothing_else(written, cluster):
    expected = {service for _, service, _ in _containers(cluster[CHART_ID])}
    assert set(written[3]["services"]) == expected | EXTRA_SERVICES


def test_environment_equals_the_manifest_but_for_documented_differences(written, cluster):
    _, _, project, compose = written
    found = env_differences(cluster[CHART_ID], compose, project.secrets, project.values)
    assert found - DOCUMENTED == set(), "differences not in scripts/local/differences.py"
    assert DOCUMENTED - found == set(), "claimed in differences.py but not different (stale claim)"


def test_an_env_var_added_to_the_cluster_but_not_locally_is_caught(written, cluster):
    _, _, project, compose = written
    objects = copy.deepcopy(cluster[CHART_ID])
    auth = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "auth")
    auth["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "GOTRUE_NEW_SETTING", "value": "1"})
    found = env_differences(objects, compose, project.secrets, project.values)
    assert ("auth", "GOTRUE_NEW_SETTING") in found - DOCUMENTED


def test_image_command_args_ports_hardening_and_limits_equal_the_cluster(written, cluster):
    services = _unescape(written[3]["services"])
    for _, service, container in _containers(cluster[CHART_ID]):
        s = services[service]
        assert s["image"] == container["image"], service
        assert s.get("entrypoint") == container.get("command"), service
        assert s.get("command") == container.get("args"), service
        if "network_mode" not in s:
            assert s["expose"] == [str(p["containerPort"]) for p in container["ports"]], service
        ctx = container["securityContext"]
        assert s["user"] == f"{ctx['runAsUser']}:{ctx['runAsGroup']}"
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"]
        limits = container["resources"]["limits"]
        millicores = int(limits["cpu"][:-1]) if limits["cpu"].endswith("m") else int(limits["cpu"]) * 1000
        assert round(s["cpus"] * 1000) == millicores, service
        assert s["mem_limit"] == limits["memory"].replace("Mi", "m").replace("Gi", "g"), service
    tags = {images.Image(repository=r, tag=t).ref for r, t in (s["image"].rsplit(":", 1) for s in services.values())}
    assert all(not ref.endswith(":latest") for ref in tags)


def test_database_is_the_bootstrap_jobs_postgres_at_the_rds_engine_version(written, cluster):
    cfg, _, _, compose = written
    job = next(o for o in cluster[BOOTSTRAP_CHART_ID] if o["kind"] == "Job")
    db_image = compose["services"][local.DB_SERVICE]["image"]
    assert db_image == job["spec"]["template"]["spec"]["containers"][0]["image"] == images.POSTGRES_CLIENT.ref
    engine = cfg.environments[local.LOCAL_ENV].database.engine_version
    assert db_image.split(":")[1].startswith(f"{engine}-"), (db_image, engine)


def test_database_answers_on_the_rds_endpoint_names(written):
    _, _, project, compose = written
    aliases = compose["services"][local.DB_SERVICE]["networks"][local.NETWORK]["aliases"]
    assert aliases == [project.values.db_host, project.values.db_read_host]


def test_service_dns_names_are_network_aliases(written, cluster):
    services = written[3]["services"]
    for component, service, _ in _containers(cluster[CHART_ID]):
        if service == component:
            assert f"{component}.supabase.svc.cluster.local" in services[service]["networks"][local.NETWORK]["aliases"]
        else:
            assert services[service]["network_mode"] == f"service:{component}"


# --- Swapped pieces --------------------------------------------------------------------------


def test_storage_uses_the_file_backend_on_a_persistent_mount(written):
    _, out, _, compose = written
    storage = compose["services"]["storage"]
    assert storage["environment"]["STORAGE_BACKEND"] == "file"
    path = storage["environment"]["FILE_STORAGE_BACKEND_PATH"]
    assert f"{out / 'state' / 'storage'}:{path}" in storage["volumes"]
    # Transformations: storage hands imgproxy local:///<path>/..., resolved under imgproxy's root.
    imgproxy = compose["services"]["imgproxy"]
    assert f"{out / 'state' / 'storage'}:{path}:ro" in imgproxy["volumes"]
    assert imgproxy["environment"]["IMGPROXY_LOCAL_FILESYSTEM_ROOT"] == "/"


def test_the_repositorys_functions_directory_is_mounted_into_the_edge_runtime(written):
    functions = written[3]["services"]["functions"]
    assert f"{components.FUNCTIONS_DIR}:{components.FUNCTIONS_MOUNT}:ro" in functions["volumes"]
    main = Path(functions["command"][-1].replace(components.FUNCTIONS_MOUNT, str(components.FUNCTIONS_DIR)))
    assert (main / "index.ts").is_file()


def test_kong_config_is_the_clusters_but_for_rate_limit_store_and_tracing(written, cluster):
    cfg, out, project, _ = written
    local_config = yamlio.load((out / "project" / "files/kong/kong-config/kong.yml").read_text())
    template = next(o for o in cluster[CHART_ID] if o["metadata"]["name"] == "kong-config")
    props = SupabaseProps.from_config(cfg, project.env_name, project.values)
    variables = {v.var: project.secrets[f"{v.key}#{v.property}"] for v in kong.secret_values(props)}
    cluster_config = yamlio.load(
        kong.render_template(template["spec"]["target"]["template"]["data"]["kong.yml"], variables)
    )
    assert local_config["services"] == cluster_config["services"]
    assert local_config["consumers"] == cluster_config["consumers"]
    plugins = {p["name"]: p for p in local_config["plugins"]}
    assert "opentelemetry" not in plugins and plugins["rate-limiting"]["config"]["policy"] == "local"
    assert "redis" not in plugins["rate-limiting"]["config"]


# --- Local secrets ---------------------------------------------------------------------------


def test_api_keys_are_minted_from_the_local_jwt_secret(written):
    _, _, project, compose = written
    secret = project.secrets[f"{SecretKeys.JWT}#secret"]
    for field, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
        claims = verified_claims(project.secrets[f"{SecretKeys.API_KEYS}#{field}"], secret)
        assert claims and claims["role"] == role
    assert compose["services"]["auth"]["environment"]["GOTRUE_JWT_SECRET"] == secret
    assert compose["services"]["studio"]["environment"]["SUPABASE_ANON_KEY"] == project.secrets["api-keys#anon_key"]


def test_new_key_kinds_are_minted_as_the_minter_mints_them(written):
    """Checked by PyJWT's JWKS verifier, as PostgREST, Realtime and Storage verify."""
    _, _, project, compose = written
    keys = {k.removeprefix(f"{SecretKeys.API_KEYS}#"): v for k, v in project.secrets.items()}
    assert keyset.opaque_key_valid(keys["publishable_key"], keyset.PUBLISHABLE_PREFIX)
    assert keyset.opaque_key_valid(keys["secret_key"], keyset.SECRET_PREFIX)
    jwks = jwt.PyJWKSet.from_dict(json.loads(keys["jwks"]))
    for field, role in (("anon_key_asymmetric", "anon"), ("service_role_key_asymmetric", "service_role")):
        kid = jwt.get_unverified_header(keys[field])["kid"]
        (key,) = [k for k in jwks.keys if k.key_id == kid]
        assert jwt.decode(keys[field], key.key, algorithms=["ES256"])["role"] == role
    assert all("d" not in k for k in json.loads(keys["jwks"])["keys"])
    signers = [k for k in json.loads(keys["jwt_keys"]) if "sign" in k.get("key_ops", [])]
    assert len(signers) == 1 and "d" in signers[0]
    # The same values reach the services through the chart's own templates.
    assert compose["services"]["auth"]["environment"]["GOTRUE_JWT_KEYS"] == keys["jwt_keys"]


def test_switching_legacy_keys_off_keeps_the_signing_and_opaque_keys(written, cluster):
    _, _, project, _ = written
    slots = local.local_secret_values(cluster[CHART_ID], project.values, project.secrets, legacy_api_keys=False)
    assert f"{SecretKeys.API_KEYS}#anon_key" not in slots
    assert [k["kty"] for k in json.loads(slots[f"{SecretKeys.API_KEYS}#jwks"])["keys"]] == ["EC"]
    for field in ("signing_keys", "publishable_key", "secret_key", "anon_key_asymmetric"):
        assert slots[f"{SecretKeys.API_KEYS}#{field}"] == project.secrets[f"{SecretKeys.API_KEYS}#{field}"], field


def test_no_public_demo_value_and_no_secret_reused(written):
    _, _, project, _ = written
    values = [
        v
        for k, v in project.secrets.items()
        if not k.startswith(f"{SecretKeys.DASHBOARD}#user") and "smtp#user" not in k
    ]
    assert not [v for v in values if any(d in v for d in PUBLIC_DEMO_VALUES)]
    assert len(set(values)) == len(values)


def test_a_rerender_keeps_the_secrets_the_database_was_initialised_with(written):
    cfg, out, project, compose = written
    again = local.write_project(cfg, out / "again", state_dir=out / "state")
    assert again.secrets == project.secrets
    # The running database's certificate stays the one the clients' CA signed, and nothing else
    # moves either: Compose recreates a container whenever its configuration changes.
    for rel in (local.COMPOSE_FILE, *project.files):
        assert (out / "again" / rel).read_text() == (out / "project" / rel).read_text(), rel
    assert set(again.compose["volumes"]) == set(compose["volumes"])
    fresh = local.render_local(cfg, state_dir=out / "other")
    assert fresh.secrets[f"{SecretKeys.JWT}#secret"] != project.secrets[f"{SecretKeys.JWT}#secret"]
    # New passwords, new database volume: never a database whose passwords nobody has.
    assert set(fresh.compose["volumes"]) != set(compose["volumes"])


def test_meta_and_studio_dial_the_master_hosts_name_the_local_certificate_carries(cluster, written):
    """On AWS the master secret's host is the instance endpoint (the name RDS's certificate
    carries); locally it is the db alias the local certificate names, rederived on every render
    so a stored value from another config never outlives it."""
    _, out, project, compose = written
    slot = f"{SecretKeys.DB_MASTER}#host"
    assert project.secrets[slot] == project.values.db_host
    cert = x509.load_pem_x509_certificate((out / "project" / "files/db/tls/server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert project.values.db_host in names
    services = _unescape(compose["services"])
    assert services["meta"]["environment"]["PG_META_DB_HOST"] == project.values.db_host
    assert services["studio"]["environment"]["POSTGRES_HOST"] == project.values.db_host
    stale = {**project.secrets, slot: "db.elsewhere.internal"}
    assert local.local_secret_values(cluster[CHART_ID], project.values, stale)[slot] == project.values.db_host


def test_a_secret_the_cluster_reads_but_local_cannot_make_stops_the_render(cluster, written):
    objects = copy.deepcopy(cluster[CHART_ID])
    es = next(o for o in objects if o["kind"] == "ExternalSecret")
    es["spec"]["data"][0]["remoteRef"]["property"] = "brand_new_property"
    with pytest.raises(local.LocalRenderError, match="brand_new_property"):
        local.local_secret_values(objects, written[2].values)


def test_eso_functions_match_the_charts_own_renderer_and_go():
    template = "a: {{ .x | toJson }}"
    assert local.render_eso_template(template, {"x": 'p"q\\'}) == kong.render_template(template, {"x": 'p"q\\'})
    # Go's url.QueryEscape: space -> '+', everything reserved percent-encoded.
    assert local.render_eso_template("{{ .x | urlquery }}", {"x": "a b/c?d&e@f~"}) == "a+b%2Fc%3Fd%26e%40f~"
    assert local.render_eso_template('{{ .x | replace "\\"" "\\"\\"" }}', {"x": 'a"b'}) == 'a""b'
    with pytest.raises(local.LocalRenderError):
        local.render_eso_template("{{ .x | b64enc }}", {"x": "a"})


# --- TLS to the database ---------------------------------------------------------------------


def test_db_certificate_passes_verify_full_with_the_mounted_ca(written):
    """A real TLS handshake: the db's certificate against the CA mounted where the RDS CA was,
    checked for the hostname the services dial (what sslmode=verify-full does)."""
    _, out, project, compose = written
    files = out / "project" / "files"
    assert (files / rds_ca.VOLUME / rds_ca.KEY).read_text() in compose["services"]["meta"]["environment"][
        "PG_META_DB_SSL_ROOT_CERT"
    ]
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files / "db/tls/server.crt", files / "db/tls/server.key")
    client_ctx = ssl.create_default_context(cafile=str(files / rds_ca.VOLUME / rds_ca.KEY))
    for host, ok in ((project.values.db_host, True), (project.values.db_read_host, True), ("db.elsewhere", False)):
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]

            def serve(listener=listener):
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    pass

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                with socket.create_connection(("127.0.0.1", port)) as raw:
                    if ok:
                        with client_ctx.wrap_socket(raw, server_hostname=host) as tls:
                            assert tls.version() in ("TLSv1.2", "TLSv1.3")
                    else:
                        with pytest.raises(ssl.SSLCertVerificationError):
                            client_ctx.wrap_socket(raw, server_hostname=host)
            finally:
                thread.join(timeout=5)


def test_command_line_is_printed_with_the_project_path(capsys):
    from scripts.local.__main__ import main

    with tempfile.TemporaryDirectory() as tmp:
        assert main(["--config", "config/default.yaml", "--out", f"{tmp}/p", "--state", f"{tmp}/state"]) == 0
        out = capsys.readouterr().out
        assert f"docker compose -f {tmp}/p/{local.COMPOSE_FILE} up" in out
        stored = json.loads((Path(tmp) / "state" / local.SECRETS_FILE).read_text())
        keys = {f: stored[f"{SecretKeys.API_KEYS}#{f}"] for f in ("publishable_key", "anon_key")}
        assert f"(publishable key: {keys['publishable_key']}, anon key: {keys['anon_key']})" in out
        assert main(["--env", "nope", "--out", f"{tmp}/p", "--state", f"{tmp}/state"]) == 2
        assert "ENV='nope' is not an environment of the config; fix: one of" in capsys.readouterr().err


def test_second_organization_renders_its_first_non_production_environment(tmp_path):
    """tests/fixtures' organization has no `dev`: its first non-production environment runs."""
    cfg = load_config(str(Path(__file__).resolve().parents[1] / "fixtures" / "orgs" / "acme.yaml"))
    project = local.write_project(cfg, tmp_path / "p", state_dir=tmp_path / "s")
    assert project.env_name == next(n for n, e in cfg.environments.items() if not e.production)
    schema = json.loads(SCHEMA.read_text())
    assert not list(
        jsonschema.Draft7Validator(schema).iter_errors(yamlio.load((tmp_path / "p" / local.COMPOSE_FILE).read_text()))
    )
