"""AWS Backup for the data tier: vault, plan with DR-region copies, and automatic restore tests.

The database is selected by ARN; EBS volumes (Prometheus, anything else stateful on the
cluster) opt in with the tag `backup=supabase`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from constructs import Construct

from constructs_lib.nag import acknowledge

BACKUP_TAG = ("backup", "supabase")
# AWS Backup keeps continuous (point-in-time) recovery points for at most 35 days.
MAX_CONTINUOUS_DAYS = 35
DAILY_SNAPSHOT = events.Schedule.cron(minute="0", hour="5")
# Restore tests run weekly on Saturday morning UTC and pick the newest recovery point of the week.
RESTORE_TEST_SCHEDULE = "cron(0 6 ? * SAT *)"
RESTORE_TEST_START_WINDOW_HOURS = 8
RESTORE_TEST_SELECTION_DAYS = 7
# The smallest Graviton class that runs PostgreSQL 17: a restore test proves the data comes
# back, not the production throughput.
RESTORE_TEST_INSTANCE_CLASS = "db.t4g.medium"
VAULT_LOCK_MAX_RETENTION = cdk.Duration.days(3650)


class DataBackup(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        encryption_key: kms.IKey,
        database: rds.DatabaseInstance,
        restore_subnet_group_name: str,
        restore_security_group_id: str,
        dr_vault: backup.IBackupVault,
        retention_days: int,
        continuous: bool,
        lock: bool,
        restore_validation_hours: int,
    ) -> None:
        """`continuous` adds point-in-time recovery points; `lock` puts the vault under
        AWS Backup Vault Lock (governance mode) with `retention_days` as the minimum."""
        super().__init__(scope, id_)
        retention = cdk.Duration.days(retention_days)

        self.vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name=name,
            encryption_key=encryption_key,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            # Nobody, administrators included, deletes a recovery point early; lifecycle does.
            block_recovery_point_deletion=True,
            lock_configuration=backup.LockConfiguration(min_retention=retention, max_retention=VAULT_LOCK_MAX_RETENTION)
            if lock
            else None,
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description=f"{name}: AWS Backup jobs, copies and restore tests",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(f"service-role/{policy}")
                for policy in ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores")
            ],
        )
        for policy in ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"):
            acknowledge(
                self.role,
                (
                    f"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}]",
                    f"{policy} is AWS's maintained service-role policy for AWS Backup; it follows the services' API changes",
                ),
            )

        rules = [
            backup.BackupPlanRule(
                rule_name="DailySnapshot",
                schedule_expression=DAILY_SNAPSHOT,
                delete_after=retention,
                copy_actions=[
                    backup.BackupPlanCopyActionProps(destination_backup_vault=dr_vault, delete_after=retention)
                ],
            )
        ]
        if continuous:
            rules.append(
                backup.BackupPlanRule(
                    rule_name="Continuous",
                    schedule_expression=DAILY_SNAPSHOT,
                    enable_continuous_backup=True,
                    delete_after=cdk.Duration.days(min(retention_days, MAX_CONTINUOUS_DAYS)),
                )
            )
        self.plan = backup.BackupPlan(
            self, "Plan", backup_plan_name=name, backup_vault=self.vault, backup_plan_rules=rules
        )
        self.plan.add_selection(
            "Database",
            backup_selection_name=f"{name}-database",
            role=self.role,
            resources=[backup.BackupResource.from_rds_database_instance(database)],
        )
        stack = cdk.Stack.of(self)
        # L1: Resources AND Conditions narrows the tag to EBS volumes; the L2's tag selection
        # (ListOfTags) would pick up any resource type carrying the tag.
        self.volume_selection = backup.CfnBackupSelection(
            self,
            "TaggedVolumes",
            backup_plan_id=self.plan.backup_plan_id,
            backup_selection=backup.CfnBackupSelection.BackupSelectionResourceTypeProperty(
                selection_name=f"{name}-tagged-volumes",
                iam_role_arn=self.role.role_arn,
                resources=[stack.format_arn(service="ec2", resource="volume", resource_name="*")],
                conditions={
                    "StringEquals": [
                        {"ConditionKey": f"aws:ResourceTag/{BACKUP_TAG[0]}", "ConditionValue": BACKUP_TAG[1]}
                    ]
                },
            ),
        )

        plan_name = name.replace("-", "_")
        self.restore_testing_plan = backup.CfnRestoreTestingPlan(
            self,
            "RestoreTestingPlan",
            restore_testing_plan_name=plan_name,
            schedule_expression=RESTORE_TEST_SCHEDULE,
            start_window_hours=RESTORE_TEST_START_WINDOW_HOURS,
            recovery_point_selection=backup.CfnRestoreTestingPlan.RestoreTestingRecoveryPointSelectionProperty(
                algorithm="LATEST_WITHIN_WINDOW",
                include_vaults=[self.vault.backup_vault_arn],
                recovery_point_types=["CONTINUOUS", "SNAPSHOT"] if continuous else ["SNAPSHOT"],
                selection_window_days=RESTORE_TEST_SELECTION_DAYS,
            ),
        )
        self.restore_testing_selection = backup.CfnRestoreTestingSelection(
            self,
            "RestoreTestingSelection",
            restore_testing_plan_name=plan_name,
            restore_testing_selection_name=f"{plan_name}_database",
            protected_resource_type="RDS",
            protected_resource_arns=[database.instance_arn],
            iam_role_arn=self.role.role_arn,
            # Restored into the isolated subnets (the account has no default VPC to fall back
            # on), behind the database's security group so the validation function reaches it,
            # and on a small class; AWS Backup deletes it after the validation window.
            restore_metadata_overrides={
                "dbSubnetGroupName": restore_subnet_group_name,
                "vpcSecurityGroupIds": cdk.Fn.join("", ['["', restore_security_group_id, '"]']),
                "dbInstanceClass": RESTORE_TEST_INSTANCE_CLASS,
            },
            validation_window_hours=restore_validation_hours,
        )
        self.restore_testing_selection.node.add_dependency(self.restore_testing_plan)
