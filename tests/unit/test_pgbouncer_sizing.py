"""Pool sizing from the RDS instance class (database.pgbouncer)."""

from __future__ import annotations

import configparser

import pytest

from config.model import RDS_INSTANCE_CLASSES
from database import pgbouncer
from database.pgbouncer import max_connections, pool_sizes, render_ini


def test_every_configurable_class_has_a_memory_size():
    assert pgbouncer.INSTANCE_MEMORY_GIB.keys() >= RDS_INSTANCE_CLASSES


@pytest.mark.parametrize(
    ("instance_class", "nominal"),
    # RDS's formula on the class's full memory: the real value is a little lower.
    [("db.t4g.micro", 112), ("db.t4g.medium", 450), ("db.m7g.large", 901), ("db.r7g.large", 1802)],
)
def test_max_connections_stays_a_little_below_the_nominal_formula(instance_class, nominal):
    value = max_connections(instance_class)
    assert 0.65 * nominal <= value < nominal


def test_max_connections_is_capped_at_5000():
    assert max_connections("db.r8g.8xlarge") == 5000
    assert max_connections("db.r7g.2xlarge") == 5000


def test_max_connections_grows_with_memory():
    ordered = ["db.t4g.micro", "db.t4g.small", "db.t4g.medium", "db.t4g.large", "db.r7g.large", "db.r7g.xlarge"]
    values = [max_connections(c) for c in ordered]
    assert values == sorted(values) and len(set(values)) == len(values)


@pytest.mark.parametrize("replicas", [1, 2, 3, 5])
def test_bigger_class_gets_bigger_pools(replicas):
    small = pool_sizes(instance_class="db.t4g.medium", pgbouncer_replicas=replicas)
    large = pool_sizes(instance_class="db.r7g.large", pgbouncer_replicas=replicas)
    assert large.per_pod_server_connections > small.per_pod_server_connections
    assert large.default_pool_size > small.default_pool_size


@pytest.mark.parametrize("instance_class", sorted(RDS_INSTANCE_CLASSES))
@pytest.mark.parametrize("replicas", [1, 2, 3])
def test_all_pods_including_the_surge_pod_fit_under_max_connections_minus_headroom(instance_class, replicas):
    sizes = pool_sizes(instance_class=instance_class, pgbouncer_replicas=replicas)
    limit = max_connections(instance_class)
    assert sizes.headroom >= pgbouncer.SUPERUSER_RESERVED + 1
    assert sizes.worst_case_server_connections <= limit - sizes.headroom
    assert 1 <= sizes.default_pool_size < sizes.per_pod_server_connections


def test_more_replicas_means_smaller_pools_per_pod():
    two = pool_sizes(instance_class="db.r7g.large", pgbouncer_replicas=2)
    four = pool_sizes(instance_class="db.r7g.large", pgbouncer_replicas=4)
    assert four.per_pod_server_connections < two.per_pod_server_connections


def test_unknown_class_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown RDS instance class 'db\.x2iedn\.large'.*fix: one of"):
        pool_sizes(instance_class="db.x2iedn.large", pgbouncer_replicas=2)


def test_too_small_a_server_for_the_replicas_is_an_error():
    with pytest.raises(ValueError, match="fix: a larger instance class or fewer replicas"):
        pool_sizes(instance_class="db.t4g.micro", pgbouncer_replicas=1, server_max_connections=6)


def test_explicit_max_connections_overrides_the_class_default():
    sizes = pool_sizes(instance_class="db.r7g.large", pgbouncer_replicas=1, server_max_connections=20)
    assert sizes.server_max_connections == 20
    assert sizes.worst_case_server_connections <= 20 - sizes.headroom


def test_ini_carries_the_sizes_and_both_databases():
    ini = render_ini(
        primary_host="db.prod.supabase.internal",
        replica_host="db-ro.prod.supabase.internal",
        port=5432,
        dbname="postgres",
        instance_class="db.r7g.large",
        replicas=3,
    )
    parser = configparser.ConfigParser(comment_prefixes=(";",), interpolation=None)
    parser.read_string(ini)
    sizes = pool_sizes(instance_class="db.r7g.large", pgbouncer_replicas=3)
    bouncer = parser["pgbouncer"]
    assert bouncer["pool_mode"] == "transaction"
    assert bouncer["auth_type"] == "scram-sha-256"
    assert int(bouncer["max_db_connections"]) == sizes.per_pod_server_connections
    assert int(bouncer["default_pool_size"]) == sizes.default_pool_size
    assert bouncer["server_tls_sslmode"] == "require"
    assert "auth_query" not in bouncer
    assert parser["databases"]["postgres"] == "host=db.prod.supabase.internal port=5432 dbname=postgres"
    assert parser["databases"]["postgres_ro"] == "host=db-ro.prod.supabase.internal port=5432 dbname=postgres"


def test_userlist_escapes_quotes():
    assert pgbouncer.render_userlist({"a": 'x"y'}) == '"a" "x""y"\n'
