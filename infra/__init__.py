"""The program `pulumi up` runs: the stack settings (`config`, the only reader of `pulumi.Config`), the replacement
guard, the components every stack is made of, the release steps (health gate, schema migration) and the servers' user
data.

Imports only the Pulumi and Alibaba Cloud SDKs; the offline plan (`plan/`) and the pipeline tools (`pipeline/`) may
import this package, never the other way round.
"""

from infra import guard
from infra.alarms import Alarms, AlarmsArgs, Contact, Thresholds
from infra.app_tier import AppTier, AppTierArgs, Placement
from infra.config import SLB_SOURCE_CIDR, Settings, SettingsError, load_settings, secret_config
from infra.database import Database, DatabaseArgs
from infra.load_balancer import CasCertificate, HttpsListener, LoadBalancer, LoadBalancerArgs
from infra.network import Network, NetworkArgs, Subnet

__all__ = [
    "SLB_SOURCE_CIDR",
    "Alarms",
    "AlarmsArgs",
    "AppTier",
    "AppTierArgs",
    "CasCertificate",
    "Contact",
    "Database",
    "DatabaseArgs",
    "HttpsListener",
    "LoadBalancer",
    "LoadBalancerArgs",
    "Network",
    "NetworkArgs",
    "Placement",
    "Settings",
    "SettingsError",
    "Subnet",
    "Thresholds",
    "guard",
    "load_settings",
    "secret_config",
]
