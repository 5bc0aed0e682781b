"""`make local`: the Supabase chart of one environment, rendered as a Docker Compose project.

Nothing about a service is written twice. The renderer takes the objects the cluster gets
(`k8s_charts.supabase.chart.render_supabase` for one environment, `dev` by default), fills each
ExternalSecret template with locally generated values, and turns each Deployment container
into a Compose service with the same image, command, args, env, ports, user and limits. The
ways it departs from the cluster are the table in `scripts/local/differences.py`; the
database is the bootstrap Job's own image running `database/bootstrap.sql` as an init script.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import ipaddress
import json
import re
import secrets as random
import shlex
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from config import yamlio
from config.model import OrgConfig
from config.naming import SecretKeys
from constructs_lib.database import parameters as rds_parameters
from database.bootstrap import BOOTSTRAP_SQL, password_env_var, psql_args
from database.roles import DATABASE_LOGIN_ROLES, LOGIN_ROLES, MASTER_USER
from k8s_charts.aws_values import AwsValues, from_config
from k8s_charts.supabase import components, images, rds_ca
from k8s_charts.supabase.bootstrap import SQL_DIR, SQL_FILE
from k8s_charts.supabase.chart import CHART_ID, render_supabase
from k8s_charts.supabase.props import CLUSTER_DOMAIN, NAMESPACE, SupabaseProps, service_host
from ops.mint_api_keys import handler as minter
from scripts.local import differences as diff

LOCAL_ENV = "dev"
PROJECT = "supabase-local"
NETWORK = "supabase"
COMPOSE_FILE = "compose.yaml"
# State that must outlive re-renders and `make synth` (which replaces cdk.out): the generated
# secrets, which the database volume was initialised with, and Storage's objects.
STATE_DIR = Path(__file__).resolve().parents[2] / ".local"
SECRETS_FILE = "secrets.json"
DB_SERVICE = "db"
# Mailpit: a maintained SMTP catcher with a web inbox (the supabase CLI ships an equivalent).
# Left without SMTP auth, it advertises no AUTH, so GoTrue's mailer sends without logging in
# (Go's PLAIN auth refuses to send credentials unencrypted to a host other than localhost).
MAIL_IMAGE = images.Image(repository="axllent/mailpit", tag="v1.26.1")
MAIL_UI_CONTAINER_PORT = 8025
DB_DATA = "/var/lib/postgresql/data"
DB_TLS_DIR = "/etc/postgresql-local"
# The server refuses a key file others can read; the mount keeps the host's owner, so the
# entrypoint copies it where the postgres user owns it.
DB_KEY = "/var/run/postgresql/server.key"
INIT_SCRIPT = "/docker-entrypoint-initdb.d/10-supabase-bootstrap.sh"
BOOTSTRAP_SQL_MOUNT = f"{SQL_DIR}/{SQL_FILE}"
# The public host's Kong routes the local stack serves, and Studio's own port.
PUBLISHED = {"kong": ("http", diff.API_PORT), "studio": ("http", diff.STUDIO_PORT)}


class LocalRenderError(Exception):
    """The cluster renders something the local stack has no rule for; the message says which."""


# --- Secret values ---------------------------------------------------------------------------


def _token(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(random.choice(alphabet) for _ in range(length))


def _saml_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


# (secret key under the environment prefix, JSON property) -> generator. Lengths follow the
# services' minimums in /work/shared/SUPABASE.md (JWT secret 32+, SECRET_KEY_BASE 64+,
# DB_ENC_KEY exactly 16, CRYPTO_KEY 32+) and the bootstrap's 16+ for passwords.
_GENERATED: dict[tuple[str, str], Callable[[], str]] = {
    (SecretKeys.JWT, "secret"): lambda: _token(48),
    (SecretKeys.DB_MASTER, "password"): lambda: _token(32),
    (SecretKeys.REALTIME, "secret_key_base"): lambda: _token(64),
    (SecretKeys.REALTIME, "db_enc_key"): lambda: _token(16),
    (SecretKeys.REALTIME, "metrics_jwt_secret"): lambda: _token(48),
    (SecretKeys.META, "crypto_key"): lambda: _token(48),
    (SecretKeys.DASHBOARD, "username"): lambda: "supabase",
    (SecretKeys.DASHBOARD, "password"): lambda: _token(32),
    (SecretKeys.SMTP, "username"): lambda: "local",
    (SecretKeys.SMTP, "password"): lambda: _token(32),
    (SecretKeys.REDIS, "auth_token"): lambda: _token(32),
    (SecretKeys.SAML, "private_key"): _saml_key,
    **{(role.secret_key, "password"): (lambda: _token(32)) for role in LOGIN_ROLES},
}
# Signed or derived, not random: minted from the values above with the custom resource's own
# functions, field names and all (ops/mint_api_keys/handler.py).
_MINTED_FIELDS = (
    *minter.KEY_FIELDS.values(),
    minter.METRICS_TOKEN_FIELD,
    minter.SIGNING_KEYS_FIELD,
    *minter.OPAQUE_FIELDS,
    *minter.PRESIGNED_FIELDS.values(),
    minter.JWKS_FIELD,
    minter.GOTRUE_KEYS_FIELD,
)
_MINTED = {(SecretKeys.API_KEYS, p) for p in _MINTED_FIELDS}
# Facts of the environment, not secrets: rederived on every render, never kept from `stored`.
# The master secret's host is the instance endpoint on AWS (its SecretTargetAttachment); here
# the db service's alias that the local certificate names (render_local's db_hosts).
_DERIVED: dict[tuple[str, str], Callable[[AwsValues], str]] = {
    (SecretKeys.DB_MASTER, "host"): lambda values: values.db_host,
}


def _remote_id(ref: Mapping[str, Any], prefix: str) -> tuple[str, str]:
    """(key, property): the key relative to the environment's prefix, or absolute as given."""
    key = str(ref["key"])
    return (key.removeprefix(prefix), str(ref.get("property") or ""))


def _slot(key: tuple[str, str]) -> str:
    return f"{key[0]}#{key[1]}" if key[1] else key[0]


def local_secret_values(
    objects: list[dict[str, Any]],
    values: AwsValues,
    stored: Mapping[str, str] | None = None,
    *,
    legacy_api_keys: bool = True,
) -> dict[str, str]:
    """Secret slot (`<key>#<property>`) -> local value for every remote value the chart reads.

    `stored` values are kept (the database was initialised with them, and sessions were signed
    with the stored signing key); missing ones are generated, derived ones recomputed. The API
    keys are minted as the minter mints them for an environment with these `legacy_api_keys`. A
    remote value with no rule here stops the render: the cluster reads a secret the local stack
    does not know how to make."""
    out = dict(stored or {})
    prefix = values.secret_prefix
    refs = [d["remoteRef"] for o in objects if o["kind"] == "ExternalSecret" for d in o["spec"]["data"]]
    for ref in refs:
        key = _remote_id(ref, prefix)
        if key in _DERIVED:
            out[_slot(key)] = _DERIVED[key](values)
        elif _slot(key) in out or key in _MINTED:
            continue
        elif key in _GENERATED:
            out[_slot(key)] = _GENERATED[key]()
        elif not str(ref["key"]).startswith(prefix) and not key[1]:
            # A full name outside the environment (an OAuth client secret): a placeholder;
            # the provider itself needs the real one to sign anyone in.
            out[_slot(key)] = _token(32)
        else:
            raise LocalRenderError(
                f"secret {ref['key']} property {key[1]!r} is read by the cluster but has no local value; "
                "fix: add a generator for it to _GENERATED (or _MINTED, _DERIVED) in scripts/local/__init__.py"
            )
    now = int(time.time())
    policy = minter.TokenPolicy()
    jwt_secret = out[_slot((SecretKeys.JWT, "secret"))]
    minted: dict[str, str] = {}
    if legacy_api_keys:
        minted = minter.mint_keys(jwt_secret, issuer=policy.issuer, expiry_days=policy.expiry_days, now=now)
    else:
        # Switched off, the minter removes them; so does a re-render after the switch.
        for field_name in minter.KEY_FIELDS.values():
            out.pop(_slot((SecretKeys.API_KEYS, field_name)), None)
    metrics_secret = out.get(_slot((SecretKeys.REALTIME, "metrics_jwt_secret")))
    if metrics_secret:
        minted[minter.METRICS_TOKEN_FIELD] = minter.mint_metrics_token(
            metrics_secret, issuer=policy.issuer, expiry_days=policy.expiry_days, now=now
        )
    for field_name, token in minted.items():
        out.setdefault(_slot((SecretKeys.API_KEYS, field_name)), token)
    # The new key kinds: the minter keeps the stored signing and opaque keys and re-derives
    # the rest from them, so a re-render changes nothing.
    keys = {f: out[_slot((SecretKeys.API_KEYS, f))] for f in _MINTED_FIELDS if _slot((SecretKeys.API_KEYS, f)) in out}
    minter.mint_new_keys(keys, policy, jwt_secret if legacy_api_keys else None, now)
    out.update({_slot((SecretKeys.API_KEYS, f)): value for f, value in keys.items()})
    return out


# --- External Secrets templates --------------------------------------------------------------

_ACTION = re.compile(r"\{\{ \.([a-z_0-9]+)((?: \| [^|}]+?)*) \}\}")
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\S+')


def _apply(function: str, value: str) -> str:
    # The ESO engine v2 functions the charts use (Go text/template + Sprig).
    tokens = _TOKEN.findall(function)
    name, args = tokens[0], [json.loads(t) for t in tokens[1:]]
    if name == "urlquery" and not args:
        return quote_plus(value, safe="")  # Go url.QueryEscape
    if name == "toJson" and not args:
        return json.dumps(value)
    if name == "sha256sum" and not args:
        return hashlib.sha256(value.encode()).hexdigest()
    if name == "replace" and len(args) == 2:
        return value.replace(args[0], args[1])
    raise LocalRenderError(f"template function {function!r} has no local implementation")


def render_eso_template(template: str, variables: Mapping[str, str]) -> str:
    def action(match: re.Match[str]) -> str:
        value = variables[match.group(1)]
        for function in filter(None, match.group(2).split(" | ")):
            value = _apply(function.strip(), value)
        return value

    out = _ACTION.sub(action, template)
    if "{{" in out:
        raise LocalRenderError(f"unrendered template action left: {out[out.index('{{') :][:60]!r}")
    return out


def rendered_secrets(objects: list[dict[str, Any]], values: AwsValues, slots: Mapping[str, str]) -> dict[str, dict]:
    """Secret name -> {key: value}, as External Secrets would write them."""
    out = {}
    for o in objects:
        if o["kind"] != "ExternalSecret":
            continue
        variables = {
            d["secretKey"]: slots[_slot(_remote_id(d["remoteRef"], values.secret_prefix))] for d in o["spec"]["data"]
        }
        target = o["spec"]["target"]
        out[target["name"]] = {k: render_eso_template(t, variables) for k, t in target["template"]["data"].items()}
    return out


# --- Local TLS for the database --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LocalTls:
    ca_pem: str
    cert_pem: str
    key_pem: str


TLS_SLOTS = {"ca_pem": "local-tls#ca_pem", "cert_pem": "local-tls#cert_pem", "key_pem": "local-tls#key_pem"}


def local_tls(hostnames: list[str], stored: Mapping[str, str]) -> LocalTls:
    """The stored CA and certificate while they name `hostnames`, else new ones. Kept like the
    secrets: a re-render must not hand clients a CA the running database's certificate is not from."""
    if all(slot in stored for slot in TLS_SLOTS.values()):
        kept = LocalTls(**{name: stored[slot] for name, slot in TLS_SLOTS.items()})
        cert = x509.load_pem_x509_certificate(kept.cert_pem.encode())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
        if names == hostnames and cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC):
            return kept
    return mint_tls(hostnames)


def mint_tls(hostnames: list[str], *, days: int = 825) -> LocalTls:
    """A CA and a server certificate for `hostnames` (the RDS endpoint names, aliased to db)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "supabase-local database CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return LocalTls(
        ca_pem=ca.public_bytes(pem).decode(),
        cert_pem=cert.public_bytes(pem).decode(),
        key_pem=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    )


# --- The project -----------------------------------------------------------------------------


@dataclass
class LocalProject:
    compose: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # path relative to the project dir -> text
    secrets: dict[str, str] = field(default_factory=dict)
    env_name: str = LOCAL_ENV
    values: AwsValues | None = None


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kubelet_expand(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` -> its value, as the kubelet expands command, args and env; unknown stays."""
    return _K8S_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _cpus(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _memory(quantity: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    return quantity[:-2] + units[quantity[-2:]]


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container_env(
    container: dict[str, Any],
    *,
    secrets_by_name: Mapping[str, Mapping[str, str]],
    config_maps: Mapping[str, dict[str, Any]],
    overrides: Mapping[str, str],
    ca_pem: str,
    public_url: str,
) -> dict[str, str]:
    """The container's env as the kubelet would give it, with the local overrides applied."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        name = entry["name"]
        if name in overrides:
            value = overrides[name]
        elif "value" in entry:
            value = entry["value"]
            if value.startswith(public_url):
                value = diff.LOCAL_API_URL + value.removeprefix(public_url)
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            value = secrets_by_name[ref["name"]][ref["key"]]
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            # The RDS CA is the one ConfigMap value the local stack replaces (database-ca).
            value = ca_pem if ref["name"] == rds_ca.CONFIG_MAP else config_maps[ref["name"]]["data"][ref["key"]]
        else:
            raise LocalRenderError(
                f"{container['name']}: env {name} comes from {entry.get('valueFrom')}, which has no local "
                "value; fix: give it a local value in scripts/local/differences.py"
            )
        env[name] = kubelet_expand(value, env)
    return env


def _volume_files(
    volume: dict[str, Any],
    *,
    secrets_by_name: Mapping[str, Mapping[str, str]],
    config_maps: Mapping[str, dict[str, Any]],
) -> dict[str, str] | None:
    """relative path -> content of a configMap/secret/projected volume; None for other kinds."""

    def items(data: Mapping[str, str], selected: list[dict[str, str]] | None) -> dict[str, str]:
        return {i["path"]: data[i["key"]] for i in selected} if selected else dict(data)

    if "configMap" in volume:
        source = volume["configMap"]
        return items(config_maps[source["name"]]["data"], source.get("items"))
    if "secret" in volume:
        source = volume["secret"]
        return items(secrets_by_name[source["secretName"]], source.get("items"))
    if "projected" in volume:
        out: dict[str, str] = {}
        for source in volume["projected"]["sources"]:
            if "configMap" in source:
                out.update(items(config_maps[source["configMap"]["name"]]["data"], source["configMap"].get("items")))
            elif "secret" in source:
                out.update(items(secrets_by_name[source["secret"]["name"]], source["secret"].get("items")))
            else:
                raise LocalRenderError(f"projected volume {volume['name']}: unsupported source {sorted(source)}")
        return out
    return None


def local_kong_config(text: str) -> str:
    """kong.yml as rendered, with the rate-limit-store and tracing differences applied."""
    config = yamlio.load(text)
    plugins = []
    for plugin in config["plugins"]:
        if plugin["name"] == "opentelemetry":
            continue
        if plugin["name"] == "rate-limiting":
            plugin = copy.deepcopy(plugin)
            plugin["config"]["policy"] = "local"
            plugin["config"].pop("redis", None)
        plugins.append(plugin)
    config["plugins"] = plugins
    return yamlio.dump(config, sort_keys=False, width=1000)


# RDS extensions the official postgres image does not ship (difference database-parameters).
NOT_IN_IMAGE = ("pg_tle", "pg_cron")
NOT_IN_IMAGE_PREFIXES = ("pg_tle", "cron")


def _db_flags(cfg: OrgConfig, env_name: str) -> list[str]:
    """The RDS parameter group as `postgres -c` flags (difference database-parameters)."""
    params = dict(rds_parameters(cfg.environments[env_name].database))
    translated = {"wal_level": "logical"} if params.pop("rds.logical_replication", "0") == "1" else {}
    if params.pop("rds.force_ssl", "0") == "1":
        translated.update(
            ssl="on",
            ssl_cert_file=f"{DB_TLS_DIR}/server.crt",
            ssl_key_file=DB_KEY,
            hba_file=f"{DB_TLS_DIR}/pg_hba.conf",
        )
    leftovers = sorted(k for k in params if k.startswith("rds."))
    if leftovers:
        raise LocalRenderError(f"RDS parameters {leftovers} have no local translation; fix: add one in _db_flags")
    preload = params.pop("shared_preload_libraries", "").split(",")
    libraries = [lib for lib in preload if lib and lib not in NOT_IN_IMAGE]
    if libraries:
        translated["shared_preload_libraries"] = ",".join(libraries)
    # A library's own settings (cron.database_name) name a library the server does not load.
    translated.update({k: v for k, v in params.items() if k.split(".", 1)[0] not in NOT_IN_IMAGE_PREFIXES})
    return [f for k, v in translated.items() for f in ("-c", f"{k}={v}")]


# TLS required from every address, as rds.force_ssl=1; the image's init scripts use the socket.
PG_HBA = """local all all trust
hostssl all all all scram-sha-256
hostnossl all all all reject
"""


def _shell_word(arg: str) -> str:
    """One psql argument for bash: a kubelet `$(VAR)` becomes a quoted "${VAR}"."""
    if "$(" not in arg:
        return shlex.quote(arg)
    if any(c in arg for c in '"\\`'):
        raise LocalRenderError(f"psql argument {arg!r} cannot be double-quoted safely")
    return '"' + _K8S_VAR.sub(lambda m: "${" + m.group(1) + "}", arg) + '"'


def init_script(sql_path: str = BOOTSTRAP_SQL_MOUNT) -> str:
    """The bootstrap Job's psql call as the image's init script (runs as POSTGRES_USER)."""
    return (
        "#!/bin/bash\n"
        "# database/bootstrap.sql with the bootstrap Job's psql arguments (database.bootstrap.psql_args),\n"
        "# run once by the postgres image on an empty data directory.\n"
        "set -euo pipefail\n"
        'exec psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\\n    '
        + " \\\n    ".join(_shell_word(a) for a in psql_args(sql_path))
        + "\n"
    )


def _escape_dollars(value: Any) -> Any:
    # Compose interpolates ${VAR} and $VAR everywhere in the file; $$ is a literal dollar.
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    return value


def local_environment(cfg: OrgConfig, requested: str | None = None) -> str:
    """The environment whose chart runs locally: `requested`, else `dev`, else the first
    non-production one."""
    names = list(cfg.environments)
    if requested is not None:
        if requested not in cfg.environments:
            raise LocalRenderError(f"ENV={requested!r} is not an environment of the config; fix: one of {names}")
        return requested
    if LOCAL_ENV in cfg.environments:
        return LOCAL_ENV
    candidates = [n for n, e in cfg.environments.items() if not e.production]
    if not candidates:
        raise LocalRenderError(
            f"the config has no non-production environment; fix: name one with ENV= (one of {names})"
        )
    return candidates[0]


def render_local(
    cfg: OrgConfig,
    *,
    env_name: str | None = None,
    stored: Mapping[str, str] | None = None,
    state_dir: Path = STATE_DIR,
) -> LocalProject:
    env_name = local_environment(cfg, env_name)
    values = from_config(cfg, env_name)
    objects = render_supabase(cfg, env_name, values)[CHART_ID]
    legacy = SupabaseProps.from_config(cfg, env_name, values).auth.legacy_api_keys
    slots = local_secret_values(objects, values, stored, legacy_api_keys=legacy)
    secrets_by_name = rendered_secrets(objects, values, slots)
    config_maps = _by_kind(objects, "ConfigMap")
    overrides = diff.env_overrides()
    public_url = SupabaseProps.from_config(cfg, env_name, values).api_url
    db_hosts = [values.db_host, values.db_read_host]
    tls = local_tls(db_hosts, slots)
    slots.update({slot: getattr(tls, name) for name, slot in TLS_SLOTS.items()})
    storage_container = _by_kind(objects, "Deployment")["storage"]["spec"]["template"]["spec"]["containers"][0]
    storage_path = next(e["value"] for e in storage_container["env"] if e["name"] == "FILE_STORAGE_BACKEND_PATH")
    files: dict[str, str] = {}
    services: dict[str, dict[str, Any]] = {}
    dependencies: dict[str, set[str]] = {}

    for name, deployment in _by_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for index, container in enumerate(pod["containers"]):
            service_name = name if index == 0 else f"{name}-{container['name']}"
            env = container_env(
                container,
                secrets_by_name=secrets_by_name,
                config_maps=config_maps,
                overrides=overrides.get(name, {}),
                ca_pem=tls.ca_pem,
                public_url=public_url,
            )
            ctx = container["securityContext"]
            limits = container["resources"]["limits"]
            service: dict[str, Any] = {"image": container["image"]}
            if "command" in container:
                service["entrypoint"] = [kubelet_expand(a, env) for a in container["command"]]
            if "args" in container:
                service["command"] = [kubelet_expand(a, env) for a in container["args"]]
            if env:
                service["environment"] = env
            if index == 0:
                # A second container shares the first's network, where Docker refuses `expose`.
                service["expose"] = [str(p["containerPort"]) for p in container.get("ports", [])]
            service.update(
                {
                    "user": f"{ctx['runAsUser']}:{ctx['runAsGroup']}",
                    "read_only": ctx["readOnlyRootFilesystem"],
                    "cap_drop": list(ctx["capabilities"]["drop"]),
                    "security_opt": ["no-new-privileges:true"],
                    "cpus": _cpus(limits["cpu"]),
                    "mem_limit": _memory(limits["memory"]),
                    "restart": "unless-stopped",
                }
            )
            tmpfs, mounts, mounted = [], [], []
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                target = mount["mountPath"]
                if "emptyDir" in volume:
                    tmpfs.append(target)
                elif volume["name"] == rds_ca.VOLUME:
                    files[f"files/{rds_ca.VOLUME}/{rds_ca.KEY}"] = tls.ca_pem
                    mounts.append(f"./files/{rds_ca.VOLUME}:{target}:ro")
                elif target == components.FUNCTIONS_MOUNT:
                    mounts.append(f"{components.FUNCTIONS_DIR}:{target}:ro")
                else:
                    content = _volume_files(volume, secrets_by_name=secrets_by_name, config_maps=config_maps)
                    if content is None:
                        raise LocalRenderError(f"{name}: volume {volume['name']} has no local equivalent")
                    for rel, text in content.items():
                        if rel == "kong.yml":
                            text = local_kong_config(text)
                        files[f"files/{name}/{volume['name']}/{rel}"] = text
                        mounted.append(text)
                    mounts.append(f"./files/{name}/{volume['name']}:{target}:ro")
            if name == "storage":
                # Inside the /tmp tmpfs, so objects outlive a restart (difference storage-backend).
                mounts.append(f"{state_dir / 'storage'}:{storage_path}")
            if name == "imgproxy":
                mounts.append(f"{state_dir / 'storage'}:{storage_path}:ro")
            if tmpfs:
                service["tmpfs"] = tmpfs
            if mounts:
                service["volumes"] = mounts
            if index == 0:
                aliases = [service_host(name)]
                network: dict[str, Any] = {"aliases": aliases}
                if name == "realtime":
                    aliases.append(f"{components.REALTIME_HEADLESS}.{NAMESPACE}.{CLUSTER_DOMAIN}")
                    network["ipv4_address"] = diff.REALTIME_ADDRESS
                service["networks"] = {NETWORK: network}
                if name in PUBLISHED:
                    port = next(p["containerPort"] for p in container["ports"] if p["name"] == PUBLISHED[name][0])
                    service["ports"] = [f"127.0.0.1:{PUBLISHED[name][1]}:{port}"]
            else:
                # A pod's containers share one network namespace.
                service["network_mode"] = f"service:{name}"
                dependencies.setdefault(service_name, set()).add(name)
            haystack = json.dumps(service) + "".join(mounted)
            if any(h in haystack for h in db_hosts):
                dependencies.setdefault(service_name, set()).add(DB_SERVICE)
            if name == "auth":
                dependencies.setdefault(service_name, set()).add(diff.MAIL_SERVICE)
            for other in _by_kind(objects, "Deployment"):
                # Kong is reached only at request time, and Studio and the edge runtime call it.
                if other not in (name, "kong") and service_host(other) in haystack:
                    dependencies.setdefault(service_name, set()).add(other)
            services[service_name] = service

    master_password = slots[_slot((SecretKeys.DB_MASTER, "password"))]
    # Named after the master password: lost secrets mean a fresh database, never one whose
    # passwords nobody knows.
    db_volume = "db-" + hashlib.sha256(master_password.encode()).hexdigest()[:12]
    role_env = {
        password_env_var(r.password_variable): slots[_slot((r.secret_key, "password"))] for r in DATABASE_LOGIN_ROLES
    }
    files["files/db/tls/server.crt"] = tls.cert_pem
    files["files/db/tls/server.key"] = tls.key_pem
    files["files/db/tls/pg_hba.conf"] = PG_HBA
    files["files/db/init/10-supabase-bootstrap.sh"] = init_script()
    files["files/db/bootstrap/bootstrap.sql"] = BOOTSTRAP_SQL
    prepare_key = (
        f'install -o postgres -g postgres -m 0600 {DB_TLS_DIR}/server.key {DB_KEY} && exec docker-entrypoint.sh "$@"'
    )
    services[DB_SERVICE] = {
        "image": images.POSTGRES_CLIENT.ref,
        "entrypoint": ["/bin/bash", "-c", prepare_key, "db"],
        "command": ["postgres", *_db_flags(cfg, env_name)],
        "environment": {
            "POSTGRES_USER": MASTER_USER,
            "POSTGRES_PASSWORD": master_password,
            "POSTGRES_DB": values.db_name,
            **role_env,
        },
        "volumes": [
            f"{db_volume}:{DB_DATA}",
            f"./files/db/tls:{DB_TLS_DIR}:ro",
            f"./files/db/init/10-supabase-bootstrap.sh:{INIT_SCRIPT}:ro",
            f"./files/db/bootstrap:{SQL_DIR}:ro",
        ],
        # Over TCP, which the image's init phase keeps closed: healthy means bootstrapped.
        "healthcheck": {
            "test": [
                "CMD",
                "pg_isready",
                "--host=127.0.0.1",
                f"--username={MASTER_USER}",
                f"--dbname={values.db_name}",
            ],
            "interval": "2s",
            "timeout": "5s",
            "retries": 60,
        },
        "ports": [f"127.0.0.1:{diff.DB_PORT}:{values.db_port}"],
        "networks": {NETWORK: {"aliases": db_hosts}},
        "restart": "unless-stopped",
    }
    services[diff.MAIL_SERVICE] = {
        "image": MAIL_IMAGE.ref,
        "expose": [str(diff.MAIL_SMTP_PORT)],
        "ports": [f"127.0.0.1:{diff.MAIL_UI_PORT}:{MAIL_UI_CONTAINER_PORT}"],
        "networks": {NETWORK: {}},
        "restart": "unless-stopped",
    }
    _check_acyclic(dependencies)
    for service_name, needs in dependencies.items():
        services[service_name]["depends_on"] = {
            n: {"condition": "service_healthy" if n == DB_SERVICE else "service_started"} for n in sorted(needs)
        }
    subnet = ipaddress.ip_network(diff.SUBNET)
    if ipaddress.ip_address(diff.REALTIME_ADDRESS) not in subnet:
        raise LocalRenderError(f"REALTIME_ADDRESS {diff.REALTIME_ADDRESS} is outside SUBNET {subnet}")
    compose = {
        "name": PROJECT,
        "services": _escape_dollars(services),
        "networks": {NETWORK: {"ipam": {"config": [{"subnet": str(subnet)}]}}},
        "volumes": {db_volume: {}},
    }
    return LocalProject(compose=compose, files=files, secrets=slots, env_name=env_name, values=values)


def _check_acyclic(graph: Mapping[str, set[str]]) -> None:
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        if node in path:
            raise LocalRenderError(f"depends_on cycle: {' -> '.join((*path, node))}")
        if node in done:
            return
        for nxt in graph.get(node, ()):
            visit(nxt, (*path, node))
        done.add(node)

    for node in graph:
        visit(node, ())


def write_project(
    cfg: OrgConfig, outdir: Path, *, env_name: str | None = None, state_dir: Path = STATE_DIR
) -> LocalProject:
    """Render into `outdir`, keeping the secrets of an earlier render from `state_dir`."""
    secrets_path = state_dir / SECRETS_FILE
    stored = json.loads(secrets_path.read_text()) if secrets_path.exists() else None
    project = render_local(cfg, env_name=env_name, stored=stored, state_dir=state_dir)
    outdir.mkdir(parents=True, exist_ok=True)
    for rel, text in project.files.items():
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        # Read by the containers' own users (uid 10001, postgres); a local, throwaway stack.
        path.chmod(0o755 if rel.endswith(".sh") else 0o644)
    storage = state_dir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    storage.chmod(0o777)  # written by the storage container's uid 10001
    secrets_path.write_text(json.dumps(project.secrets, indent=2, sort_keys=True), encoding="utf-8")
    secrets_path.chmod(0o600)
    header = "# Rendered by `make local` from the Supabase chart; edit the chart or scripts/local, not this.\n"
    (outdir / COMPOSE_FILE).write_text(header + yamlio.dump(project.compose, sort_keys=False, width=1000))
    return project
