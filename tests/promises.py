"""What the README promises, and the tests that guard each promise.

A promise quotes the README's own words, so rewording the README means revisiting its guard,
and names its guards as test node ids (``file::test``, parametrizations included), the
highest proof level first. `tests/conftest.py` checks both on every full collection: a claim
the README no longer makes, or a guard that no longer exists, stops the session before any
test runs. `make promises` prints the table.

Levels, as the README's Verification section orders them: ``component`` (the real service,
server or tool runs), ``rehearsal`` (a replay of AWS's or Kubernetes' documented rule), and
``static`` (the synthesized output is checked).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

SNAPSHOTS = "tests/snapshot/"
COMPONENT = "component"
REHEARSAL = "rehearsal"
STATIC = "static"


@dataclass(frozen=True, kw_only=True)
class Promise:
    name: str
    claim: str
    level: str
    guards: tuple[str, ...]


U = "tests/unit/"
C = "tests/compliance/"
D = "tests/deploy/"
I = "tests/integration/"  # noqa: E741 - one letter per tier keeps the table readable

PROMISES: tuple[Promise, ...] = (
    Promise(
        name="one component catalog",
        claim="`catalog.py` states each Supabase component's ports, calls and mesh behaviour once, and the Deployments, Services, Kong upstreams, NetworkPolicies, Istio policies and ServiceMonitors are derived from it",
        level=STATIC,
        guards=(
            U + "test_catalog.py::test_one_edit_in_the_catalog_moves_every_reference",
            U + "test_catalog.py::test_routes_and_calls_agree",
            U + "test_supabase_network.py",
        ),
    ),
    # Accounts, environments and stacks
    Promise(
        name="config errors name the field, value, rule and fix",
        claim="Every line names the field, the value given, the rule and the fix.",
        level=COMPONENT,
        guards=(
            U + "test_config.py::test_refused_with_path_value_rule_and_fix",
            U + "test_config.py::test_every_error_is_reported_at_once",
            U + "test_config_generated.py::test_any_edit_is_accepted_or_refused_with_a_message",
        ),
    ),
    Promise(
        name="every accepted config synthesizes",
        claim="with your organization synthesized and put through the deploy rehearsal",
        level=REHEARSAL,
        guards=(U + "test_config_generated.py::test_every_accepted_config_synthesizes", D + "test_rehearsal.py"),
    ),
    Promise(
        name="instance families only where the region offers them",
        claim="each instance family only where RDS, EC2 or ElastiCache offers it in that region",
        level=STATIC,
        guards=(
            U + "test_region_offerings.py::test_families_named_missing_are_exactly_those_the_price_list_lacks",
            U + "test_config.py::test_refused_with_path_value_rule_and_fix",
        ),
    ),
    Promise(
        name="zone letters come from a table, no lookups at synth",
        claim="each supported region's zone letters in `config/regions.py`, so synth never looks them up",
        level=STATIC,
        guards=(
            U + "test_config.py::test_default_zones_follow_the_region_table",
            U + "test_network.py::test_synth_needs_no_context_lookups",
        ),
    ),
    Promise(
        name="no public demo secret anywhere",
        claim="no public Supabase demo secret appears anywhere",
        level=STATIC,
        guards=(U + "test_supabase_contract.py::test_no_public_demo_value_anywhere",),
    ),
    Promise(
        name="cdk.out replaced only on success",
        claim="replaces `cdk.out` only when synthesis succeeded",
        level=COMPONENT,
        guards=(
            U + "test_config.py::test_output_directory_changes_only_on_success",
            U + "test_config.py::test_app_exits_with_message_before_writing_anything",
        ),
    ),
    Promise(
        name="least-privilege execution policy",
        claim="IAM writes only to stack-prefixed names, no users or access keys",
        level=REHEARSAL,
        guards=(
            D + "test_rules_permissions.py::test_execution_policy_must_cover_every_resource_type",
            D + "test_rules_permissions.py::test_explicit_iam_names_must_stay_in_the_stack_prefix",
            U + "test_deploy_access.py::test_execution_policy_scopes_iam_to_stack_names",
        ),
    ),
    Promise(
        name="NAT per AZ in prod, flow logs, endpoints",
        claim="three-tier VPC, NAT per AZ in prod, flow logs, S3 gateway + interface endpoints",
        level=STATIC,
        guards=(
            U + "test_network.py::test_prod_has_one_nat_per_az",
            U + "test_network.py::test_flow_logs_capture_all_traffic_with_retention",
            U + "test_network.py::test_endpoints",
            D + "test_rules_reachability.py",
        ),
    ),
    Promise(
        name="RDS with read replicas, backups with DR copies and restore testing",
        claim="RDS PostgreSQL + read replicas, parameters for Supabase, secrets, minted API keys, Valkey, AWS Backup",
        level=STATIC,
        guards=(
            U + "test_data_stack.py::test_read_replicas",
            U + "test_data_stack.py::test_parameter_group",
            U + "test_data_stack.py::test_backup_plan_copies_daily_to_the_dr_vault",
            U + "test_data_stack.py::test_restore_testing_plan_and_selection",
            U + "test_data_stack.py::test_valkey_replication_group",
        ),
    ),
    Promise(
        name="storage replication and Intelligent-Tiering, CloudFront with OAC",
        claim="Supabase Storage bucket with CRR (RTC) and Intelligent-Tiering, CloudFront with OAC",
        level=STATIC,
        guards=(
            U + "test_storage_stack.py::test_replication_rtc_metrics_delete_markers_and_replica_key",
            U + "test_storage_stack.py::test_intelligent_tiering_archive_tiers_from_config",
            U + "test_edge.py::test_static_assets_come_from_s3_through_oac",
        ),
    ),
    Promise(
        name="Graviton node groups, spot, Fargate",
        claim="EKS (Graviton node groups, spot, Fargate)",
        level=STATIC,
        guards=(
            U + "test_cluster_stack.py::test_node_groups_are_graviton_from_config",
            U + "test_cluster_stack.py::test_fargate_profile_for_configured_namespaces",
        ),
    ),
    Promise(
        name="one Pod Identity role per controller",
        claim="controllers as pinned Helm charts with one Pod Identity role each",
        level=COMPONENT,
        guards=(
            D + "test_helm_charts.py::test_charts_render",
            D + "test_helm_charts.py::test_every_addon_installs_its_pinned_chart",
            U + "test_addons.py::test_addon_contract_rejects_unpinned_or_unscoped",
        ),
    ),
    # From nothing to a running platform
    Promise(
        name="the journey is rehearsed against bootstrap needs",
        claim="a stack deployed before the `make bootstrap` step must not need the bootstrap bucket or roles",
        level=REHEARSAL,
        guards=(
            D + "test_rules_order.py::test_stacks_before_bootstrap_must_not_need_it",
            D + "test_rules_order.py::test_every_top_level_stack_has_a_step_and_stage_stacks_use_the_pipeline",
            D + "test_rules_order.py::test_readme_journey_is_parsed",
        ),
    ),
    Promise(
        name="new accounts deploy without reserved Lambda concurrency",
        claim="the platform reserves no Lambda concurrency, so new accounts deploy as they are",
        level=REHEARSAL,
        guards=(D + "test_rules_quotas.py::test_reserved_concurrency_fails_in_new_accounts",),
    ),
    Promise(
        name="bootstrap commands for every account and region",
        claim="prints one `cdk bootstrap` per account and region",
        level=STATIC,
        guards=(
            U + "test_deploy_access.py::test_bootstrap_trusts_tooling_for_every_account_and_region",
            U + "test_deploy_access.py::test_bootstrap_covers_every_stack_that_needs_it",
        ),
    ),
    Promise(
        name="pipeline stage order",
        claim="tests -> security scan -> staging -> smoke tests -> manual approval -> prod",
        level=STATIC,
        guards=(
            U + "test_pipeline_stack.py::test_stage_order",
            U + "test_pipeline_stack.py::test_first_environment_scanned_then_smoke_tested",
            U + "test_pipeline_stack.py::test_later_environments_need_approval",
            U + "test_pipeline_stack.py::test_synth_builds_and_tests_the_deploying_config",
        ),
    ),
    Promise(
        name="production data is retained and protected",
        claim="stateful stacks of production environments have termination protection and retained data",
        level=STATIC,
        guards=(
            U + "test_data_stack.py::test_prod_retains_and_protects_everything_stateful",
            U + "test_storage_stack.py::test_production_buckets_and_keys_are_retained",
            U + "test_dr_stack.py::test_production_vault_is_locked_and_retained",
            U + "test_security_stack.py::test_security_stack_is_termination_protected_in_production",
            U + "test_data_stack.py::test_retention_and_deletion_protection",
        ),
    ),
    Promise(
        name="stateful logical ids are pinned",
        claim="Retained buckets, keys, vaults and snapshots stay and bill until removed by hand.",
        level=STATIC,
        guards=(
            U + "test_storage_stack.py::test_stateful_logical_ids_are_pinned",
            U + "test_dr_stack.py::test_stateful_logical_ids_are_pinned",
        ),
    ),
    # Supabase on EKS
    Promise(
        name="reads go to the read-only PostgREST on the replicas",
        claim="Kong sends GET/HEAD on `/rest/v1` there",
        level=STATIC,
        guards=(U + "test_supabase_kong.py::test_rest_reads_go_to_replica_writes_to_primary",),
    ),
    Promise(
        name="Realtime tenant is its Service name",
        claim="tenant name equal to its Service name",
        level=COMPONENT,
        guards=(
            I + "test_realtime.py::test_seeded_tenant_gets_tls_turned_on",
            U + "test_supabase_kong.py::test_realtime_websocket_and_tenant",
        ),
    ),
    Promise(
        name="PgBouncer pools sized from the instance class",
        claim="pool sizes derived from the RDS instance class",
        level=COMPONENT,
        guards=(
            I + "test_pgbouncer.py::test_admin_console_shows_the_sized_pool_and_the_read_only_database",
            U + "test_pgbouncer_sizing.py::test_bigger_class_gets_bigger_pools",
            U
            + "test_pgbouncer_sizing.py::test_all_pods_including_the_surge_pod_fit_under_max_connections_minus_headroom",
        ),
    ),
    Promise(
        name="secrets only through External Secrets",
        claim="Secrets reach pods only through External Secrets from Secrets Manager",
        level=STATIC,
        guards=(
            U + "test_supabase_contract.py::test_secret_env_refs_exist_in_their_external_secret",
            U + "test_supabase_contract.py::test_no_literal_secret_in_configmaps_or_env",
            U + "test_supabase_contract.py::test_external_secrets_read_only_this_environment",
        ),
    ),
    Promise(
        name="the service_role key stays server-side",
        claim="the service_role key never appears in a ConfigMap or a browser-visible variable",
        level=STATIC,
        guards=(U + "test_supabase_contract.py::test_service_role_key_only_server_side",),
    ),
    Promise(
        name="every workload is hardened",
        claim="Every workload is hardened (restricted Pod Security, read-only root, probes, limits, PDBs",
        level=REHEARSAL,
        guards=(
            D + "test_rules_cluster.py::test_pod_security_level_of_the_namespace_judges_workloads",
            D + "test_rehearsal.py::test_rule_holds[default-k8s-gatekeeper-admits]",
            U + "test_supabase_workloads.py::test_component_naming_and_hardening",
            U + "test_supabase_network.py::test_default_deny_both_directions",
        ),
    ),
    Promise(
        name="the bootstrap Job runs before the services",
        claim="the platform stack waits for the Job to succeed",
        level=REHEARSAL,
        guards=(
            D + "test_rules_cluster.py::test_object_in_a_namespace_created_concurrently_is_a_finding",
            U + "test_addons.py::test_supabase_services_wait_for_bootstrap_job",
            U + "test_supabase_workloads.py::test_bootstrap_job",
        ),
    ),
    Promise(
        name="ExternalDNS publishes the hosts, scoped to one zone",
        claim="upsert-only, owned by the cluster, its role limited to that one zone",
        level=REHEARSAL,
        guards=(
            D + "test_rules_names.py::test_hosts_published_by_external_dns_pass",
            D + "test_rules_names.py::test_hosts_without_any_producer_fail",
            U + "test_external_dns.py::test_record_changes_are_granted_on_the_environments_zone_only",
            U + "test_external_dns.py::test_values_confine_external_dns_to_the_environment",
        ),
    ),
    Promise(
        name="the test database's master is refused what RDS refuses",
        claim="negative tests prove the master is refused what RDS refuses",
        level=COMPONENT,
        guards=(
            I + "test_db_bootstrap.py::test_master_is_refused_what_rds_refuses",
            I + "test_db_bootstrap.py::test_master_cannot_touch_roles_it_does_not_administer",
            I + "test_db_bootstrap.py::test_master_grants_only_what_rds_superuser_administers",
        ),
    ),
    Promise(
        name="the bootstrap applies twice with the Job's arguments",
        claim="`database/bootstrap.sql` through psql with the Job's exact arguments, twice",
        level=COMPONENT,
        guards=(
            I + "test_db_bootstrap.py::test_applies_twice_without_errors",
            I + "test_db_bootstrap.py::test_psql_args_pass_every_database_role_password_from_env",
        ),
    ),
    Promise(
        name="GoTrue's own migrations run as its role",
        claim="as `supabase_auth_admin`, twice; a sign-up insert",
        level=COMPONENT,
        guards=(
            I + "test_auth_migrations.py::test_migrations_run_as_the_manifests_role_over_tls",
            I + "test_auth_migrations.py::test_sign_up_like_insert_and_jwt_helpers",
        ),
    ),
    Promise(
        name="Storage's own migrations and RLS",
        claim="uploads and listings as anon, authenticated and service_role under RLS",
        level=COMPONENT,
        guards=(
            I + "test_storage_migrations.py::test_migrations_run_as_the_manifests_role",
            I + "test_storage_migrations.py::test_request_path_switches_roles_and_rls_decides",
            I + "test_storage_tls.py::test_storage_connects_with_its_url",
        ),
    ),
    Promise(
        name="Realtime's own migrations, slot and publication",
        claim="the replication slot and publication it creates",
        level=COMPONENT,
        guards=(
            I + "test_realtime.py::test_metadata_migrations_all_apply_into_the_after_connect_schema",
            I + "test_realtime.py::test_tenant_migrations_apply_in_realtimes_order",
            I + "test_realtime.py::test_broadcast_replication_slot_and_publication",
            I + "test_realtime.py::test_private_channel_authorization_switches_role",
            I + "test_realtime.py::test_start_script_does_what_run_sh_does_without_sudo",
        ),
    ),
    Promise(
        name="PostgREST's role switch",
        claim="`authenticator` switching to anon, authenticated and service_role with transaction-scoped claims",
        level=COMPONENT,
        guards=(
            I + "test_postgrest_roles.py::test_requests_as_each_role",
            I + "test_postgrest_roles.py::test_jwt_role_outside_the_api_roles_is_refused",
        ),
    ),
    Promise(
        name="postgres-meta serves Studio over verify-full TLS",
        claim="the real server (npm, same version as the image) with the rendered env",
        level=COMPONENT,
        guards=(
            I + "test_postgres_meta.py::test_npm_package_is_the_pinned_image_version",
            I + "test_postgres_meta.py::test_studio_query_through_encrypted_connection",
            I + "test_postgres_meta.py::test_meta_own_connection_serves_the_catalog",
        ),
    ),
    Promise(
        name="postgres-meta and Studio dial the name the RDS certificate carries",
        claim="postgres-meta and Studio connect by the instance endpoint from the RDS master secret's `host`, not the `db.<zone>` alias",
        level=COMPONENT,
        guards=(
            I + "test_postgres_meta.py::test_meta_refuses_a_name_the_certificate_does_not_carry",
            I + "test_postgres_meta.py::test_studio_query_through_encrypted_connection",
            I + "test_postgres_meta.py::test_meta_own_connection_serves_the_catalog",
            U + "test_local_compose.py::test_meta_and_studio_dial_the_master_hosts_name_the_local_certificate_carries",
            U + "test_supabase_rds_ca.py::test_meta_verifies_rds_for_its_own_and_studios_connections",
            U + "test_supabase_rds_ca.py::test_only_meta_and_studio_leave_the_alias",
            U + "test_data_stack.py::test_master_secret_is_attached_to_the_primary_instance",
        ),
    ),
    Promise(
        name="after a restore the master secret's host follows the CNAME",
        claim="the master secret must be attached to the new instance, or its `host` updated, for Studio's table and SQL editors to reach it",
        level=STATIC,
        guards=(
            U + "test_data_stack.py::test_master_secret_is_attached_to_the_primary_instance",
            U + "test_supabase_rds_ca.py::test_meta_verifies_rds_for_its_own_and_studios_connections",
        ),
    ),
    Promise(
        name="PgBouncer serves 10x max_connections",
        claim="10x `max_connections` clients, 0 failed transactions",
        level=COMPONENT,
        guards=(I + "test_pgbouncer.py::test_pooling_serves_ten_times_max_connections",),
    ),
    Promise(
        name="Realtime migrations RDS cannot run are recorded, not run",
        claim="The bootstrap records them as applied",
        level=COMPONENT,
        guards=(I + "test_realtime.py::test_skipped_migrations_are_exactly_those_a_non_superuser_cannot_run",),
    ),
    Promise(
        name="PostgREST schema reload without an event trigger",
        claim="(`PGRST_DB_CHANNEL_ENABLED=false`)",
        level=COMPONENT,
        guards=(I + "test_postgrest_roles.py::test_schema_reload_needs_no_event_trigger",),
    ),
    Promise(
        name="GraphQL is not routed",
        claim="`/graphql/v1` is not routed",
        level=STATIC,
        guards=(U + "test_supabase_kong.py::test_graphql_is_not_routed_because_rds_lacks_pg_graphql",),
    ),
    Promise(
        name="Storage, postgres-meta and Studio verify the RDS certificate",
        claim="Storage, postgres-meta and Studio verify the RDS certificate",
        level=COMPONENT,
        guards=(
            I + "test_storage_tls.py::test_another_ca_is_refused",
            I + "test_storage_tls.py::test_without_the_ca_storage_cannot_connect",
            I + "test_postgres_meta.py::test_meta_refuses_a_server_the_rds_ca_did_not_sign",
            U + "test_supabase_rds_ca.py::test_no_client_turns_tls_verification_off",
        ),
    ),
    Promise(
        name="SAML and OAuth per environment",
        claim="SAML SSO is switched per environment",
        level=STATIC,
        guards=(
            U + "test_supabase_contract.py::test_auth_smtp_saml_oauth",
            U + "test_supabase_handoffs.py::test_saml_key_is_read_from_the_shared_secret_name",
        ),
    ),
    # For application developers: Local stack
    Promise(
        name="make local renders the cluster's own chart",
        claim="each Deployment container becomes a Compose service with the same image, command, arguments, environment, user, read-only root and limits",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_image_command_args_ports_hardening_and_limits_equal_the_cluster",
            U + "test_local_compose.py::test_every_deployment_container_is_a_service_and_nothing_else",
            U + "test_local_compose.py::test_environment_equals_the_manifest_but_for_documented_differences",
        ),
    ),
    Promise(
        name="local env differs only where documented",
        claim="A service's environment differs from its Kubernetes manifest only where `scripts/local/differences.py` says so",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_environment_equals_the_manifest_but_for_documented_differences",
            U + "test_local_compose.py::test_an_env_var_added_to_the_cluster_but_not_locally_is_caught",
            U + "test_local_compose.py::test_kong_config_is_the_clusters_but_for_rate_limit_store_and_tracing",
        ),
    ),
    Promise(
        name="local URLs stay as rendered",
        claim="The services keep their cluster DNS names as network aliases and the database answers on the RDS endpoint names",
        level=COMPONENT,
        guards=(
            I + "test_local_bootstrap.py::test_services_reach_the_db_service_by_the_rds_name_with_their_tls_mode",
            I + "test_local_bootstrap.py::test_verify_full_fails_for_a_name_the_certificate_does_not_carry",
            U + "test_local_compose.py::test_db_certificate_passes_verify_full_with_the_mounted_ca",
            U + "test_local_compose.py::test_service_dns_names_are_network_aliases",
            U + "test_local_compose.py::test_database_answers_on_the_rds_endpoint_names",
        ),
    ),
    Promise(
        name="local database runs the RDS bootstrap on PostgreSQL 17",
        claim="`database/bootstrap.sql` run with the Job's psql arguments as its init script",
        level=COMPONENT,
        guards=(
            I + "test_local_bootstrap.py::test_postgres_meta_and_realtime_log_in_with_their_compose_env",
            I + "test_local_bootstrap.py::test_services_log_in_with_the_urls_their_compose_env_carries",
            I + "test_local_bootstrap.py::test_bootstrapped_like_rds",
            I + "test_local_bootstrap.py::test_the_init_script_is_the_jobs_psql_call",
            U + "test_local_compose.py::test_database_is_the_bootstrap_jobs_postgres_at_the_rds_engine_version",
        ),
    ),
    Promise(
        name="local database flags are the RDS parameter group",
        claim="with the RDS parameter group as server flags",
        level=COMPONENT,
        guards=(
            I + "test_local_bootstrap.py::test_db_service_runs_with_the_rds_parameters",
            I + "test_local_bootstrap.py::test_db_service_refuses_connections_without_tls",
            I + "test_local_bootstrap.py::test_every_database_flag_is_a_postgresql_17_setting",
        ),
    ),
    Promise(
        name="local db service started as composed",
        claim="`make test` starts PostgreSQL 17 the way the `db` service starts",
        level=COMPONENT,
        guards=(
            I + "test_local_bootstrap.py::test_services_reach_the_db_service_by_the_rds_name_with_their_tls_mode",
            I + "test_local_bootstrap.py::test_postgres_meta_and_realtime_log_in_with_their_compose_env",
            I + "test_local_bootstrap.py::test_db_service_runs_with_the_rds_parameters",
        ),
    ),
    Promise(
        name="local storage and functions",
        claim="Storage keeps objects on the file backend in `.local/storage`, and the edge runtime serves the repository's `functions/` directory",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_storage_uses_the_file_backend_on_a_persistent_mount",
            U + "test_local_compose.py::test_the_repositorys_functions_directory_is_mounted_into_the_edge_runtime",
        ),
    ),
    Promise(
        name="compose.yaml valid against the Compose Specification",
        claim="`compose.yaml` is validated against the Compose Specification's JSON schema",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_rendered_file_is_valid_against_the_compose_spec_schema",
            U + "test_local_compose.py::test_the_schema_refuses_a_broken_file",
            U + "test_local_compose.py::test_every_dollar_is_escaped_from_compose_interpolation",
        ),
    ),
    Promise(
        name="compose.yaml keeps the specification's rules beyond the schema",
        claim="held to the rules the specification states beyond the schema",
        level=REHEARSAL,
        guards=(
            U + "test_local_compose.py::test_rendered_project_keeps_composes_rules",
            U + "test_local_compose.py::test_compose_rules_catch_a_broken_project",
        ),
    ),
    Promise(
        name="local API keys minted like the cluster's",
        claim="The API keys are minted with the deploy-time minter's own functions: ES256 signing keys and their JWKS",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_new_key_kinds_are_minted_as_the_minter_mints_them",
            U + "test_local_compose.py::test_switching_legacy_keys_off_keeps_the_signing_and_opaque_keys",
            U + "test_local_compose.py::test_api_keys_are_minted_from_the_local_jwt_secret",
            U + "test_local_compose.py::test_command_line_is_printed_with_the_project_path",
        ),
    ),
    Promise(
        name="local secrets generated once and kept",
        claim="Secrets are generated at the first `make local` and kept in `.local/secrets.json`",
        level=STATIC,
        guards=(
            U + "test_local_compose.py::test_a_rerender_keeps_the_secrets_the_database_was_initialised_with",
            U + "test_local_compose.py::test_api_keys_are_minted_from_the_local_jwt_secret",
            U + "test_local_compose.py::test_no_public_demo_value_and_no_secret_reused",
        ),
    ),
    # API keys and signing keys
    Promise(
        name="Kong maps opaque keys to pre-signed JWTs",
        claim="Kong maps each to a pre-signed ES256 JWT (`role: anon` / `role: service_role`) and sends it upstream "
        "as `Authorization: Bearer ...`, unless the request already carries a user's session token.",
        level=COMPONENT,
        guards=(
            U + "test_kong_lua.py::test_opaque_key_reaches_the_upstream_as_its_presigned_jwt",
            U + "test_kong_lua.py::test_a_user_session_token_passes_untouched",
            U + "test_kong_lua.py::test_realtime_socket_gets_the_presigned_jwt",
            I + "test_key_rotation.py::test_rotation_keeps_sessions_and_legacy_keys_until_the_switch",
        ),
    ),
    Promise(
        name="every verifier gets the JWKS, only GoTrue the private key",
        claim="The ES256 signing keys are published as a JWKS to every verifier",
        level=STATIC,
        guards=(
            U + "test_mint_keyset.py::TestMintedKeySet::test_jwks_is_public_and_gotrue_gets_exactly_one_signing_key",
            U + "test_supabase_keys.py::test_every_verifier_gets_the_minted_jwks_through_external_secrets",
            U + "test_supabase_keys.py::test_only_gotrue_holds_a_private_signing_key",
        ),
    ),
    Promise(
        name="legacy keys refused when switched off",
        claim="Set it to false and Kong refuses the legacy keys, and no service accepts an HS256 token.",
        level=COMPONENT,
        guards=(
            U + "test_kong_lua.py::test_legacy_keys_only_while_switched_on",
            I + "test_key_rotation.py::test_rotation_keeps_sessions_and_legacy_keys_until_the_switch",
            U + "test_mint_keyset.py::TestMintedKeySet::test_legacy_switch_off_removes_legacy_keys_and_refuses_hs256",
            U + "test_supabase_keys.py::test_legacy_keys_reach_services_only_while_switched_on",
        ),
    ),
    Promise(
        name="signing-key rotation keeps sessions",
        claim="Rotating the signing key keeps user sessions.",
        level=REHEARSAL,
        guards=(
            I + "test_key_rotation.py::test_rotation_keeps_sessions_and_legacy_keys_until_the_switch",
            I + "test_key_rotation.py::test_rotating_the_legacy_jwt_secret_keeps_es256_sessions",
            U + "test_mint_keyset.py::TestRotation",
        ),
    ),
    Promise(
        name="auth under /auth/v1 with its issuer",
        claim="`API_EXTERNAL_URL` and the JWT issuer (`GOTRUE_JWT_ISSUER`) are `https://api.<domain>/auth/v1`",
        level=STATIC,
        guards=(
            U + "test_supabase_contract.py::test_auth_smtp_saml_oauth",
            U + "test_supabase_keys.py::test_renamed_and_new_settings",
            U + "test_supabase_kong.py::test_open_routes_have_only_cors",
        ),
    ),
    Promise(
        name="OpenAPI root for secret keys only",
        claim="The OpenAPI root `/rest/v1/` answers secret keys only.",
        level=STATIC,
        guards=(U + "test_supabase_kong.py::test_rest_reads_go_to_replica_writes_to_primary",),
    ),
    # Disaster recovery
    Promise(
        name="each recovery objective is tied to the template",
        claim="tests tie each objective to the template properties that achieve it",
        level=STATIC,
        guards=(
            U + "test_recovery_objectives.py::test_rpo_is_met_when_the_database_is_lost",
            U + "test_recovery_objectives.py::test_rpo_is_met_when_the_region_is_lost",
            U + "test_recovery_objectives.py::test_rto_within_the_hour_has_automatic_failover_and_a_promotable_replica",
            U + "test_recovery_objectives.py::test_restores_are_rehearsed_weekly_within_the_rto",
        ),
    ),
    # Observability and alerts
    Promise(
        name="alert rules unit-tested with promtool",
        claim="alert rules unit-tested with promtool",
        level=COMPONENT,
        guards=(
            C + "test_alert_rules.py::test_promtool_check_rules",
            C + "test_alert_rules.py::test_alerts_fire_just_past_their_thresholds_only",
            C + "test_alert_rules.py::test_every_alert_is_bracketed",
        ),
    ),
    Promise(
        name="every alert has a runbook section and a README row",
        claim="Each alert links to its section of [docs/runbooks.md](docs/runbooks.md).",
        level=STATIC,
        guards=(C + "test_alert_rules.py::test_every_alert_has_a_runbook_section_and_readme_row",),
    ),
    Promise(
        name="severity routing and inhibition",
        claim="A firing critical alert inhibits the warning of the same name.",
        level=STATIC,
        guards=(
            U + "test_monitoring_charts.py::test_severity_routing_to_sns",
            U + "test_monitoring_charts.py::test_slack_and_pagerduty_when_configured",
        ),
    ),
    Promise(
        name="dashboards as code whose queries parse",
        claim="dashboards as code",
        level=COMPONENT,
        guards=(
            C + "test_dashboards.py::test_every_dashboard_query_parses",
            C + "test_dashboards.py::test_dashboards_cover_the_required_signals",
        ),
    ),
    Promise(
        name="traces from the edge to the database",
        claim="Kong's opentelemetry plugin and the services' OTel settings",
        level=STATIC,
        guards=(
            U + "test_supabase_handoffs.py::test_traces_are_sampled_once_at_the_configured_ratio",
            U + "test_monitoring_charts.py::test_otel_collector_pipeline",
        ),
    ),
    Promise(
        name="every AWS-side alarm notifies the topic",
        claim="AWS-side alarms (CloudWatch and EventBridge, all to the same SNS topic",
        level=STATIC,
        guards=(
            U + "test_observability_stack.py::test_every_alarm_notifies_the_topic_on_alarm_and_ok",
            U + "test_observability_stack.py::test_backup_failures_reach_the_topic",
            D + "test_rules_kms.py::test_alarm_publishing_to_encrypted_topic",
        ),
    ),
    Promise(
        name="NetworkPolicy denials alerted from the CNI logs",
        claim="NetworkPolicy denials are alerted on the CDK side from VPC CNI network policy logs",
        level=STATIC,
        guards=(
            U + "test_observability_stack.py::test_deny_pattern_matches_only_deny_verdicts",
            U + "test_observability_stack.py::test_cluster_ships_network_policy_logs_where_the_filter_reads",
        ),
    ),
    # Database operations
    Promise(
        name="the exporter's own queries run as the manifests' role, slow statement on top",
        claim="The exporter's own collector queries are run on PostgreSQL 17 as the role the manifests give it, and a generated slow statement tops the top-queries result.",
        level=COMPONENT,
        guards=(
            I + "test_exporter_queries.py::test_slow_statement_tops_the_top_queries",
            I + "test_exporter_queries.py::test_connections_by_state_and_max_connections",
            I + "test_exporter_queries.py::test_replication_lag_on_primary_and_replica",
            I + "test_exporter_queries.py::test_locks_by_mode",
            I + "test_exporter_queries.py::test_exporter_connects_as_the_manifest_role",
            I + "test_exporter_queries.py::test_every_pg_series_read_by_panels_and_alerts_has_a_collector_query",
        ),
    ),
    Promise(
        name="slow statements logged with duration and plan",
        claim="The parameter group logs every statement slower than 1 s with its duration and, through `auto_explain`, its plan",
        level=COMPONENT,
        guards=(
            I + "test_exporter_queries.py::test_slow_statement_tops_the_top_queries",
            U + "test_data_stack.py::test_parameter_group",
        ),
    ),
    Promise(
        name="Performance Insights on every instance",
        claim="Performance Insights is on for every instance.",
        level=STATIC,
        guards=(
            U + "test_data_stack.py::test_primary_encryption_monitoring_and_auth",
            U + "test_data_stack.py::test_read_replicas",
        ),
    ),
    Promise(
        name="partitioning templates run on PostgreSQL 17, queries pruned",
        claim="They are run on PostgreSQL 17, pg_partman's branch with pg_partman's own SQL, and EXPLAIN shows queries pruned to the partitions they need.",
        level=COMPONENT,
        guards=(
            I + "test_partitioning.py::test_create_makes_the_current_period_and_premade_ones",
            I + "test_partitioning.py::test_attach_detach_and_archive",
            I + "test_partitioning.py::test_queries_are_pruned_to_their_range",
            I + "test_partitioning.py::test_detach_concurrently_is_refused_with_a_default_partition",
            I + "test_partitioning.py::test_pg_partman_branch_creates_premade_partitions_and_maintenance_runs",
        ),
    ),
    Promise(
        name="pg_cron preloaded by the parameter group",
        claim="scheduled by pg_cron, which the parameter group preloads",
        level=STATIC,
        guards=(U + "test_data_stack.py::test_parameter_group",),
    ),
    Promise(
        name="restore tests validated with data",
        claim="a function compares the restore canary rows on the restored instance with the source and reports SUCCESSFUL or FAILED to AWS Backup",
        level=COMPONENT,
        guards=(
            I + "test_restore_validation.py::test_matching_rows_report_successful",
            I + "test_restore_validation.py::test_a_changed_row_reports_failed",
            I + "test_restore_validation.py::test_missing_rows_report_failed",
            I + "test_restore_validation.py::test_a_database_without_the_canary_reports_failed",
            U + "test_restore_validation_wiring.py::test_rule_matches_only_completed_jobs_of_this_plan",
            U
            + "test_restore_validation_wiring.py::test_function_reaches_the_database_and_restored_instances_share_its_group",
            U + "test_restore_validation_wiring.py::test_function_ships_the_handler_and_a_layer_of_the_pinned_driver",
        ),
    ),
    Promise(
        name="three FIS drills per environment, stopped by the critical alarms",
        claim="Each environment has three AWS FIS experiment templates: an RDS reboot with failover, the loss of one zone's nodes and a spot interruption, each stopped by the critical alarms and logged.",
        level=REHEARSAL,
        guards=(
            D + "test_fis_templates.py::test_drills_follow_the_fis_actions_reference",
            D + "test_fis_templates.py::test_every_environment_has_the_three_drills",
            D + "test_fis_templates.py::test_a_broken_template_is_refused",
            D + "test_fis_templates.py::test_a_role_missing_a_permission_is_refused",
        ),
    ),
    Promise(
        name="the drill probe measures a real outage",
        claim="which measure a real outage of a PostgreSQL 17 server to within one try",
        level=COMPONENT,
        guards=(
            I + "test_drill_probe.py::test_probe_measures_a_real_outage",
            I + "test_drill_probe.py::test_recovery_time_refuses_a_log_without_a_complete_outage",
        ),
    ),
    # Security (the table's own "proven by" column names these files)
    Promise(
        name="SCPs on every top-level OU",
        claim="SCPs on every top-level OU (`stacks/org_stack.py`)",
        level=REHEARSAL,
        guards=(
            D + "test_rules_permissions.py::test_scps_must_let_the_execution_role_update_and_roll_back",
            U + "test_org_stack.py::test_scps_attached_to_every_top_level_ou",
            U + "test_org_stack.py::test_scp_contents",
        ),
    ),
    Promise(
        name="tamper-evident audit log",
        claim="organization CloudTrail, KMS, Object Lock (governance)",
        level=STATIC,
        guards=(
            U + "test_org_stack.py::test_organization_trail",
            U + "test_org_stack.py::test_trail_bucket_locked_down",
        ),
    ),
    Promise(
        name="threat detection and posture in every account",
        claim="GuardDuty, Security Hub, AWS Config, Inspector, ECR enhanced scanning",
        level=STATIC,
        guards=(
            U + "test_security_stack.py::test_guardduty_features",
            U + "test_security_stack.py::test_security_hub_with_foundational_best_practices",
            U + "test_security_stack.py::test_inspector_enabled_for_ecr_and_ec2",
        ),
    ),
    Promise(
        name="incident response quarantines the pod",
        claim="label it, isolate it with a quarantine NetworkPolicy, notify",
        level=COMPONENT,
        guards=(
            U + "test_incident_response.py",
            U + "test_supabase_handoffs.py::test_a_quarantined_pod_is_selected_by_no_allow_policy",
        ),
    ),
    Promise(
        name="cdk-nag, cfn-lint and checkov with reasoned suppressions",
        claim="AWS Solutions and NIST 800-53 rev5 rules; IaC misconfigurations",
        level=STATIC,
        guards=(
            C + "test_cdk_nag.py::test_no_unacknowledged_findings",
            C + "test_cdk_nag.py::test_acknowledgements_have_specific_reasons",
            C + "test_cdk_nag.py::test_acknowledgements_sit_on_resources_not_stacks",
            C + "test_cfn_scanners.py::test_cfn_lint_has_no_errors",
            C + "test_cfn_scanners.py::test_checkov_has_no_failed_checks",
            C + "test_cfn_scanners.py::test_checkov_skips_are_justified",
            C + "test_cfn_scanners.py::test_environments_left_unscanned_hold_nothing_the_scanned_lack",
        ),
    ),
    Promise(
        name="admission policies reject bad workloads and admit ours",
        claim="Pod Security *restricted*, allowed registries, pinned tags, resources, probes, labels",
        level=COMPONENT,
        guards=(
            C + "test_gatekeeper.py::test_bad_fixture_is_rejected",
            D + "test_rehearsal.py::test_rule_holds[default-k8s-gatekeeper-admits]",
            C + "test_gatekeeper.py::test_prod_denies",
        ),
    ),
    Promise(
        name="exemptions are narrow and explained",
        claim="the tests refuse short reasons and any exemption of `supabase`",
        level=STATIC,
        guards=(
            C + "test_gatekeeper.py::test_exemptions_are_explained_and_applied",
            C + "test_gatekeeper.py::test_named_exemption_covers_one_workload_in_one_namespace",
        ),
    ),
    Promise(
        name="Falco runtime rules",
        claim="shells, writes to binary/config dirs, credential reads, unexpected egress",
        level=COMPONENT,
        guards=(
            C + "test_falco_rules.py::test_rules_cover_the_required_detections",
            C + "test_falco_rules.py::test_checks_reject_bad_rules",
        ),
    ),
    Promise(
        name="default-deny network, one rule per flow, quarantine excluded",
        claim="default deny, one rule per allowed flow, quarantined pods excluded from every allow",
        level=STATIC,
        guards=(
            U + "test_supabase_network.py::test_default_deny_both_directions",
            U + "test_supabase_network.py::test_edges_are_exactly_the_design",
            U + "test_supabase_network.py::test_pod_edges_are_allowed_on_both_ends",
        ),
    ),
    Promise(
        name="mTLS STRICT and per-identity authorization",
        claim="mTLS STRICT, authorization per caller identity, circuit breaking",
        level=COMPONENT,
        guards=(
            C + "test_istio.py::test_mesh_objects_are_valid",
            C + "test_istio.py::test_every_network_flow_inside_the_namespace_is_admitted_by_the_mesh",
            C + "test_istio.py::test_principals_are_the_workloads_service_accounts",
        ),
    ),
    Promise(
        name="WAF at the edge and the ALB",
        claim="managed rule groups, rate limiting",
        level=STATIC,
        guards=(
            U + "test_edge.py::test_web_acl_rules_and_rate_limit",
            U + "test_public_attributes.py::test_distribution_attaches_the_cloudfront_scope_acl",
        ),
    ),
    # Feature flags
    Promise(
        name="feature flags roll out linearly, slower in production",
        claim="linear rollout (slower in production)",
        level=STATIC,
        guards=(
            U + "test_feature_flags.py::test_flags_from_config_are_deployed",
            U + "test_feature_flags.py::test_prod_rolls_out_slower_than_dev",
        ),
    ),
    # Verification: each rehearsal class is its own promise
    Promise(
        name="rehearsal: order",
        claim="cross-region and cross-stack exports deploy first",
        level=REHEARSAL,
        guards=(D + "test_rules_order.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="rehearsal: quotas",
        claim="IAM managed, inline and trust policy sizes; SCP size and count per target",
        level=REHEARSAL,
        guards=(D + "test_rules_quotas.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="rehearsal: key policies",
        claim="every KMS key admits the services that use it",
        level=REHEARSAL,
        guards=(D + "test_rules_kms.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="rehearsal: reachability",
        claim="every VPC-attached Lambda reaches every endpoint it calls",
        level=REHEARSAL,
        guards=(D + "test_rules_reachability.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="rehearsal: names",
        claim="every role ARN named is created; every hostname referenced resolves",
        level=REHEARSAL,
        guards=(D + "test_rules_names.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="rehearsal: cluster apply order and admission",
        claim="the apply order of every manifest and Helm release against a model of the API server",
        level=REHEARSAL,
        guards=(D + "test_rules_cluster.py", D + "test_rehearsal.py"),
    ),
    Promise(
        name="every vendored chart renders with helm and validates strictly",
        claim="`helm template` of every vendored chart",
        level=COMPONENT,
        guards=(
            D + "test_helm_charts.py::test_charts_render",
            D + "test_helm_charts.py::test_rendered_objects_validate_strictly",
            D + "test_helm_charts.py::test_every_value_is_read_by_its_chart",
        ),
    ),
    Promise(
        name="manifests validate strictly against Kubernetes 1.35 and CRD schemas",
        claim="kubernetes-validate (strict, Kubernetes 1.35) plus CRD schemas",
        level=STATIC,
        guards=(
            C + "test_all_manifests.py::test_builtin_objects_validate_strictly",
            C + "test_all_manifests.py::test_custom_resources_have_a_schema_suite",
            C + "test_supabase_manifests.py::test_strict_validation_catches_typos",
        ),
    ),
    # Verification: the live smoke suite
    Promise(
        name="smoke suite: every case per key kind, keys opaque",
        claim="runs every case once per key kind the secret holds",
        level=COMPONENT,
        guards=(
            U + "test_smoke_client.py::test_the_live_suite_runs_every_case_per_key_kind_against_the_stand_in",
            U + "test_smoke_client.py::test_every_case_passes_with_either_key_kind_and_leaves_nothing_behind",
            U + "test_smoke_client.py::test_every_key_pair_in_secrets_manager_is_found_opaque_first",
            U + "test_smoke_client.py::test_requests_carry_the_key_as_supabase_js_does",
        ),
    ),
    Promise(
        name="smoke suite: each case cleans up and hides secrets",
        claim="Every case removes what it created, also when it fails, and never prints a key or token.",
        level=COMPONENT,
        guards=(
            U + "test_smoke_client.py::test_each_case_fails_when_its_rule_breaks_and_still_cleans_up",
            U + "test_smoke_client.py::test_every_case_passes_with_either_key_kind_and_leaves_nothing_behind",
            U + "test_smoke_client.py::test_a_wrong_key_fails_every_case_without_leaking_it",
            U + "test_smoke_client.py::test_cli_runs_every_case_for_each_key_kind_and_reports_failures",
        ),
    ),
    Promise(
        name="smoke suite: leftovers of interrupted runs are swept",
        claim="nothing younger, and nothing not named as a smoke run's, is touched",
        level=COMPONENT,
        guards=(U + "test_smoke_client.py::test_the_sweep_removes_only_what_interrupted_runs_left_long_ago",),
    ),
    Promise(
        name="smoke suite: each case fails when its rule breaks",
        claim="each case fails, still cleaning up, when the rule it checks is broken",
        level=COMPONENT,
        guards=(
            U + "test_smoke_client.py::test_each_case_fails_when_its_rule_breaks_and_still_cleans_up",
            U + "test_smoke_client.py::test_openapi_root_follows_the_gateway_rule",
            U + "test_smoke_client.py::test_realtime_join_without_reply_fails_within_the_timeout_and_deletes_its_user",
            U + "test_smoke_client.py::test_a_hanging_api_fails_within_the_timeout",
        ),
    ),
    Promise(
        name="smoke suite: OpenAPI root expectation follows the gateway",
        claim="the public key gets it or is refused, as the gateway's route table says",
        level=STATIC,
        guards=(U + "test_smoke_client.py::test_openapi_root_expectation_matches_the_rendered_gateway",),
    ),
    Promise(
        name="smoke suite: the probe table on a fresh platform",
        claim="the public key and users may only read it (public rows, and a user's own by the JWT's subject), only the secret key writes",
        level=COMPONENT,
        guards=(
            I + "test_smoke_table.py::test_each_key_sees_the_rows_the_smoke_suite_expects",
            I + "test_smoke_table.py::test_the_public_key_and_users_cannot_write",
            I + "test_smoke_table.py::test_the_table_has_rls_and_the_columns_the_client_writes",
            U + "test_smoke_client.py::test_every_case_passes_with_either_key_kind_and_leaves_nothing_behind",
        ),
    ),
    Promise(
        name="smoke suite: a Storage object above 6 MB and a signed URL",
        claim="a 7 MiB object (above 6 MB) goes into a private bucket",
        level=COMPONENT,
        guards=(
            U + "test_smoke_client.py::test_the_large_object_is_above_six_megabytes",
            U + "test_smoke_client.py::test_each_case_fails_when_its_rule_breaks_and_still_cleans_up",
        ),
    ),
    # Versions
    Promise(
        name="images and charts pinned",
        claim="images in code, Helm charts in code and vendored under `charts/`",
        level=STATIC,
        guards=(
            C + "test_all_manifests.py::test_every_image_is_pinned",
            D + "test_helm_charts.py::test_images_are_pinned",
            D + "test_helm_charts.py::test_sources_record_every_vendored_chart",
            U + "test_cluster_stack.py::test_eks_addons_pinned",
        ),
    ),
    # Operating the platform
    Promise(
        name="every namespace's container logs reach CloudWatch Logs",
        claim="Every container's stdout/stderr, in every namespace, goes to one CloudWatch Logs group per environment",
        level=REHEARSAL,
        guards=(
            D + "test_container_logs.py::test_every_namespace_the_platform_runs_is_covered",
            D + "test_container_logs.py::test_coverage_gaps_are_reported",
            D + "test_container_logs.py::test_agent_writes_to_the_environments_log_group",
            D + "test_container_logs.py::test_agent_config_reads_as_fluent_bit_classic_config",
        ),
    ),
    Promise(
        name="container log group: own KMS key, configured retention, writers scoped to it",
        claim="The group is encrypted with its own KMS key and keeps `observability.log_retention_days`",
        level=STATIC,
        guards=(
            D + "test_container_logs.py::test_log_group_is_encrypted_with_its_own_key_and_configured_retention",
            D + "test_container_logs.py::test_writers_may_write_to_the_log_group_only",
            U + "test_config.py::test_refused_with_path_value_rule_and_fix",
        ),
    ),
    Promise(
        name="service log lines become fields",
        claim="JSON lines (GoTrue, Storage, postgres-meta, Kong) become fields under `data.`",
        level=REHEARSAL,
        guards=(
            U + "test_logs.py::test_lines_become_fields",
            U + "test_logs.py::test_text_formats_get_their_parser_by_annotation_and_json_formats_none",
            D + "test_container_logs.py::test_every_suggested_parser_is_loaded",
        ),
    ),
    Promise(
        name="Kong's access log holds no key, cookie or query string",
        claim="with API keys, cookies and query strings removed",
        level=STATIC,
        guards=(
            U + "test_logs.py::test_kong_access_log_carries_no_key_or_cookie",
            U + "test_logs.py::test_unredacted_kong_record_would_leak",
            U + "test_logs.py::test_kong_writes_its_access_log_with_file_log_only",
        ),
    ),
    Promise(
        name="saved Logs Insights queries tested on the services' formats",
        claim="Each query is run in the tests on sample lines in the services' own formats",
        level=REHEARSAL,
        guards=(
            U + "test_logs.py::test_query_selects_exactly_its_samples",
            U + "test_logs.py::test_query_fields_exist_in_the_lines_it_selects",
            U + "test_logs.py::test_query_with_a_misspelt_field_selects_nothing",
            D + "test_container_logs.py::test_saved_queries_target_the_log_group",
        ),
    ),
    Promise(
        name="Studio offers no log pages without their backend",
        claim="Studio's Logs pages are off",
        level=STATIC,
        guards=(
            U + "test_logs.py::test_studio_offers_no_logs_without_an_analytics_backend",
            U + "test_config.py::test_refused_with_path_value_rule_and_fix",
        ),
    ),
    Promise(
        name="credentialed requests bypass the gateway cache",
        claim="a request that carries `Authorization`, a cookie or any `apikey` is routed to an uncached twin",
        level=REHEARSAL,
        guards=(
            U + "test_supabase_kong.py::test_requests_with_a_credential_bypass_the_gateway_cache",
            U + "test_supabase_kong.py::test_anonymous_public_object_requests_hit_the_gateway_cache",
            U + "test_supabase_kong.py::test_cache_bypass_header_route_is_needed",
            U + "test_supabase_kong.py::test_cache_is_refused_on_keyed_or_writable_routes",
        ),
    ),
    Promise(
        name="nothing personalised is shared from a cache",
        claim="Nothing personalised is shared from a cache",
        level=STATIC,
        guards=(
            U + "test_edge.py::test_nothing_personalised_is_shared_from_the_cdn_cache",
            U + "test_edge.py::test_a_cached_behavior_forwarding_credentials_outside_its_key_is_refused",
            U + "test_edge.py::test_api_reads_are_cached_only_when_postgrest_says_so",
            U + "test_edge.py::test_public_objects_reach_the_origin_without_credentials",
            U + "test_supabase_kong.py::test_only_public_objects_are_cached_at_the_gateway",
        ),
    ),
    Promise(
        name="make cdn-invalidate prints the invalidation commands",
        claim="`make cdn-invalidate ENV=prod` prints the commands that look up the distribution",
        level=STATIC,
        guards=(
            U + "test_cdn_invalidate.py::test_prints_lookup_invalidation_and_kong_restart",
            U + "test_edge.py::test_distribution_id_is_an_output_for_invalidations",
        ),
    ),
    Promise(
        name="version matrix lists every Supabase image",
        claim="Supabase images (`k8s_charts/supabase/images.py`, multi-arch) and the upstream release each matches.",
        level=STATIC,
        guards=(U + "test_version_matrix.py::test_readme_matrix_matches_images_py",),
    ),
    # For application developers
    Promise(
        name="migration folder rules refused at synth",
        claim="Synth refuses a badly named file, two files with the same timestamp, or a folder over 256 KiB (it travels inside the platform stack's template), each with the reason and the fix.",
        level=COMPONENT,
        guards=(U + "test_migrations_tooling.py::test_folder_rules_name_the_file_and_the_fix",),
    ),
    Promise(
        name="the migration Job's tool is the repository's pin",
        claim="`database/migrate_tool/package-lock.json` (pinned versions and hashes, the same as `package.json`'s)",
        level=COMPONENT,
        guards=(
            I + "test_app_migrations.py::test_the_jobs_own_install_step_yields_a_tool_that_applies_them",
            U + "test_migrations_tooling.py::test_the_jobs_tool_is_the_repositorys_pin",
            U + "test_migrations_tooling.py::test_job_mounts_exactly_the_folder_and_the_locked_tool",
        ),
    ),
    Promise(
        name="migrations run between the bootstrap and the services",
        claim="The platform stack applies that chart after the database bootstrap Job has succeeded, and the Supabase services only after the migration Job has succeeded.",
        level=STATIC,
        guards=(
            U + "test_migrations_tooling.py::test_platform_stack_applies_migrations_between_bootstrap_and_services",
            U + "test_migrations_tooling.py::test_migrate_runs_after_the_bootstrap_and_before_the_services",
        ),
    ),
    Promise(
        name="a failing migration release is rolled back and stops the deploy",
        claim="A release's pending migrations apply in one transaction: if one fails, none of them stays applied, the Job fails, the platform stack's deploy fails and the pipeline stops before the services roll out.",
        level=COMPONENT,
        guards=(
            I + "test_app_migrations.py::test_failing_migration_is_rolled_back_whole_and_fails_the_run",
            U + "test_migrations_tooling.py::test_platform_stack_applies_migrations_between_bootstrap_and_services",
        ),
    ),
    Promise(
        name="migrations: a re-run is a no-op, concurrent runs wait",
        claim="A second run applies nothing, and two runs at once take turns on an advisory lock.",
        level=COMPONENT,
        guards=(
            I + "test_app_migrations.py::test_second_run_changes_nothing",
            I + "test_app_migrations.py::test_concurrent_runs_one_waits_for_the_other",
            I + "test_app_migrations.py::test_make_migrate_applies_the_folder",
        ),
    ),
    Promise(
        name="migration history outside the exposed schemas",
        claim="The history is kept in `supabase_migrations.pgmigrations`, outside every schema PostgREST exposes.",
        level=COMPONENT,
        guards=(I + "test_app_migrations.py::test_samples_apply_as_the_rds_master",),
    ),
    Promise(
        name="new migrations restart PostgREST",
        claim="A release with new migrations restarts PostgREST (`rest`, `rest-ro`), whose schema cache reloads only when it starts.",
        level=STATIC,
        guards=(U + "test_migrations_tooling.py::test_new_migrations_restart_postgrest",),
    ),
    Promise(
        name="make migrate resolves the connection at run time with verified TLS",
        claim="The connection is resolved when you run it, never at synth",
        level=COMPONENT,
        guards=(
            I + "test_app_migrations.py::test_make_migrate_applies_the_folder",
            U + "test_migrations_tooling.py::test_make_migrate_reads_the_master_secret_and_verifies_tls",
            U + "test_migrations_tooling.py::test_make_migrate_prefers_database_url_and_names_unknown_environments",
        ),
    ),
    Promise(
        name="make drift finds hand-made changes",
        claim="It prints the SQL that would turn the live schema into the migrated one, which is also the migration that should have been written, and exits 1.",
        level=COMPONENT,
        guards=(I + "test_app_migrations.py::test_make_drift_finds_a_change_made_by_hand",),
    ),
    Promise(
        name="make api-docs describes the migrated schema, linted by Redocly",
        claim="one path per table (GET, POST, PATCH, DELETE), view (GET) and function (`/rpc/<name>`)",
        level=COMPONENT,
        guards=(
            I + "test_api_docs.py::test_spec_describes_the_sample_schema",
            I + "test_api_docs.py::test_redocly_lint_refuses_a_broken_description",
        ),
    ),
    Promise(
        name="make sdk types compile and fit real rows",
        claim="The TypeScript types compile with `tsc` against `@supabase/supabase-js` in a typed query, the Python types pass mypy and validate rows read from the database, and the Go structs compile and decode them.",
        level=COMPONENT,
        guards=(
            I + "test_sdk.py::test_typescript_types_compile_with_supabase_js",
            I + "test_sdk.py::test_python_types_parse_type_check_and_validate_rows",
            I + "test_sdk.py::test_go_types_compile_and_decode_rows",
        ),
    ),
)


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def problems(promises: Iterable[Promise], readme: str, node_ids: Iterable[str]) -> list[str]:
    """Why the registry no longer matches the README or the suite; empty when it does."""
    readme_words = _words(readme)
    # A guard names a test, every case of it, or one case: `test_rule_holds[default-k8s-gatekeeper-admits]`.
    cases = set(node_ids)
    collected = [node_id.split("[", 1)[0] for node_id in cases]
    found: list[str] = []
    seen: set[str] = set()
    for promise in promises:
        if promise.name in seen:
            found.append(f"{promise.name!r}: named twice")
        seen.add(promise.name)
        if promise.level not in (COMPONENT, REHEARSAL, STATIC):
            found.append(f"{promise.name!r}: level {promise.level!r} is not component, rehearsal or static")
        if _words(promise.claim) not in readme_words:
            found.append(f"{promise.name!r}: the README no longer says {promise.claim!r}; reword the claim or drop it")
        if not [guard for guard in promise.guards if not guard.startswith(SNAPSHOTS)]:
            found.append(f"{promise.name!r}: no test guards it (a snapshot is a refactoring aid, not a guard)")
        for guard in promise.guards:
            if guard not in cases and not any(
                node_id == guard or node_id.startswith(guard + "::") for node_id in collected
            ):
                found.append(f"{promise.name!r}: guard {guard} was not collected; rename it here or restore the test")
    return found


def table(promises: Iterable[Promise]) -> str:
    lines = ["| promise | proof level | guarded by |", "|---|---|---|"]
    for promise in promises:
        guards = "<br>".join(f"`{guard}`" for guard in promise.guards)
        lines.append(f"| {promise.name} | {promise.level} | {guards} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(PROMISES))
