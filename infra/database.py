"""Database: a multi-zone RDS MySQL 8.0 instance with the application's database, account, backups, and the
account's password in an OOS encrypted parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_alicloud as alicloud
import pulumi_random as random

# Any day's backup can be restored; RDS needs at least two backup days a week.
_BACKUP_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class DatabaseArgs:
    name_prefix: str
    tags: Mapping[str, str]
    primary_zone_id: str
    standby_zone_id: str
    # The VSwitches of the primary and the standby zone, in that order (RDS pairs them with the zones by position).
    primary_vswitch_id: pulumi.Input[str]
    standby_vswitch_id: pulumi.Input[str]
    # The whitelist: the app servers' VSwitch CIDRs and nothing else.
    allowed_cidrs: Sequence[str]
    instance_class: str
    storage_gb: int
    db_name: str
    db_user: str
    backup_retention_days: int
    # Changing it generates a new password (and a new version of the encrypted parameter).
    password_version: int
    # Provider-side deletion protection plus Pulumi `protect` on the instance and the database.
    protect: bool


class Database(pulumi.ComponentResource):
    """RDS MySQL High-availability: primary in zone A, standby in zone B, reachable from the app subnets only."""

    instance_id: pulumi.Output[str]
    host: pulumi.Output[str]
    port: pulumi.Output[str]
    db_name: pulumi.Output[str]
    user: pulumi.Output[str]
    password: pulumi.Output[str]
    password_parameter_name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ha-webapp:index:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        tags = dict(args.tags)

        instance = alicloud.rds.Instance(
            f"{name}-rds",
            instance_name=f"{args.name_prefix}-mysql",
            engine="MySQL",
            engine_version="8.0",
            category="HighAvailability",
            instance_type=args.instance_class,
            instance_storage=args.storage_gb,
            db_instance_storage_type="cloud_essd",
            instance_charge_type="Postpaid",
            # zone_id, zone_id_slave_a and vswitch_id are ForceNew and must list the zones in the same order.
            zone_id=args.primary_zone_id,
            zone_id_slave_a=args.standby_zone_id,
            vswitch_id=pulumi.Output.all(args.primary_vswitch_id, args.standby_vswitch_id).apply(",".join),
            security_ips=list(args.allowed_cidrs),
            # TLS on, and forced: a client that does not negotiate TLS is refused. force_encryption travels with the
            # SSL call itself (ModifyDBInstanceSSL), after SSL is open; the parameter require_secure_transport would be
            # applied first (ModifyParameters runs before ModifyDBInstanceSSL in the provider's create path) and may
            # need a restart. Source: aliyun/terraform-provider-alicloud@81c43b6,
            # alicloud/resource_alicloud_db_instance.go (schema l.688, ModifyParameters l.766, ModifyDBInstanceSSL with
            # ForceEncryption l.1544-1639).
            ssl_action="Open",
            force_encryption=1,
            deletion_protection=args.protect,
            tags=tags,
            opts=guarded,
        )
        database = alicloud.rds.Database(
            f"{name}-db",
            instance_id=instance.id,
            data_base_name=args.db_name,
            # Accepted for MySQL 8.0 whatever the provider doc's stale note says; the sources are in
            # tests/infra/test_stacks.py::test_the_database_is_utf8mb4. ForceNew: never change it on a deployed stack.
            character_set="utf8mb4",
            description=f"{args.name_prefix}-application-data",  # letters, digits, _ and - only
            opts=guarded,
        )
        # RDS wants 8-32 characters from at least three classes; these two specials need no quoting anywhere.
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=True,
            override_special="_-",
            min_upper=2,
            min_lower=2,
            min_numeric=2,
            min_special=1,
            keepers={"version": str(args.password_version)},
            opts=child,
        )
        secret_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        account = alicloud.rds.RdsAccount(
            f"{name}-account",
            db_instance_id=instance.id,
            account_name=args.db_user,
            account_password=secret_password,
            account_type="Normal",
            # Letters, digits, _ and - only, starting with a letter (rds_account docs): no spaces or parentheses.
            account_description="Application-account-ReadWrite-on-the-application-database-only",
            opts=child,
        )
        # The one place servers get the password from, at boot, with their RAM role; it never travels in user data.
        # An OOS encrypted parameter, not a KMS Secrets Manager secret: since KMS 3.0 a new secret needs a dedicated KMS
        # instance (dkms_instance_id, encryption_key_id, both ForceNew), a monthly cost; without key_id the parameter
        # is encrypted with KMS's default service key (docs/security.md has the figures and the choice).
        # Its name carries a suffix that is new on every creation: deleting the parameter deletes the KMS secret behind
        # it (DeleteSecretParameter needs kms:DeleteSecret), and a name freed by a deletion may not be usable again at
        # once, so neither `destroy` then `up` nor a replacement may reuse a name. A rotation (password_version) updates
        # the value in place: OOS keeps it as a new version of the same parameter, and the servers read the latest.
        suffix = random.RandomString(
            f"{name}-password-parameter-suffix",
            length=6,
            special=False,
            upper=False,
            # The parameter's other ForceNew inputs (type, key, constraints, KMS instance): a new one, a new name.
            keepers={"type": "Secret", "key_id": "default-service-key"},
            opts=child,
        )
        parameter = alicloud.oos.SecretParameter(
            f"{name}-password-parameter",
            secret_parameter_name=suffix.result.apply(lambda s: f"{args.name_prefix}-db-password-{s}"),
            value=secret_password,
            type="Secret",
            description=f"{args.name_prefix}-db-password",
            tags=tags,
            opts=guarded,
        )
        privilege = alicloud.rds.AccountPrivilege(
            f"{name}-privilege",
            instance_id=instance.id,
            account_name=account.account_name,
            db_names=[database.data_base_name],
            privilege="ReadWrite",
            opts=child,
        )
        alicloud.rds.BackupPolicy(
            f"{name}-backup",
            instance_id=instance.id,
            preferred_backup_periods=_BACKUP_DAYS,
            # 19:00-20:00 UTC is 03:00-04:00 in China Standard Time, the quietest hour for a regional web app.
            preferred_backup_time="19:00Z-20:00Z",
            backup_retention_period=args.backup_retention_days,
            enable_backup_log=True,
            log_backup_retention_period=args.backup_retention_days,
            opts=child,
        )

        self.instance_id = instance.id
        self.host = instance.connection_string
        self.port = instance.port
        self.db_name = database.data_base_name
        # Read through the privilege so that whoever uses the account waits until it may use the database.
        self.user = privilege.account_name
        self.password = secret_password
        self.password_parameter_name = parameter.secret_parameter_name
        self.register_outputs(
            {
                "instance_id": self.instance_id,
                "host": self.host,
                "port": self.port,
                "db_name": self.db_name,
                "user": self.user,
                "password": self.password,
                "password_parameter_name": self.password_parameter_name,
            }
        )
