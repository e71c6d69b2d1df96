"""The boot-time hand-over of runtime settings to an app server (pure; tested without a Pulumi runtime).

The image is the same for every environment and holds no secret: the systemd unit baked into it (packer/) reads
its environment from ENV_FILE, which cloud-init writes from this user data on first boot before starting the app.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

import yaml

ENV_FILE = "/etc/app/app.env"
APP_UNIT = "app.service"

_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")


def env_file(settings: Mapping[str, str]) -> str:
    """Render a systemd EnvironmentFile: one KEY="value" line per setting, quoted so any value survives."""
    lines = []
    for name, value in settings.items():
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} must match {_NAME_RE.pattern}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment variable {name} must be a single line")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, so the environment file reads as itself in a plan or a diff."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def cloud_config(settings: Mapping[str, str]) -> str:
    """A cloud-init document that writes the settings (root-only) and (re)starts the app with them."""
    document = {
        "write_files": [
            {"path": ENV_FILE, "owner": "root:root", "permissions": "0600", "content": env_file(settings)},
        ],
        "runcmd": [["systemctl", "restart", APP_UNIT]],
    }
    return "#cloud-config\n" + str(yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False))


def encode(document: str) -> str:
    """ECS takes user data base64-encoded (the provider's recommended form)."""
    return base64.b64encode(document.encode()).decode()
