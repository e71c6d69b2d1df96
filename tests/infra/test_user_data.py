"""The boot-time settings hand-over, without any Pulumi runtime."""

from __future__ import annotations

import base64

import pytest
import yaml

from infra import user_data


def test_env_file_quotes_values_for_systemd() -> None:
    text = user_data.env_file({"DB_PASSWORD": 'a"b\\c $HOME #x', "APP_PORT": "8080"})
    assert text == 'DB_PASSWORD="a\\"b\\\\c $HOME #x"\nAPP_PORT="8080"\n'  # pragma: allowlist secret


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"db_host": "x"}, "must match"),
        ({"1HOST": "x"}, "must match"),
        ({"DB_HOST": "a\nB=c"}, "single line"),
    ],
)
def test_env_file_refuses_what_systemd_would_misread(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        user_data.env_file(settings)


def test_cloud_config_writes_the_file_root_only_then_restarts_the_app() -> None:
    document = user_data.cloud_config({"APP_ENV": "prod"})
    assert document.startswith("#cloud-config\n")
    parsed = yaml.safe_load(document)
    assert parsed == {
        "write_files": [
            {"path": "/etc/app/app.env", "owner": "root:root", "permissions": "0600", "content": 'APP_ENV="prod"\n'}
        ],
        "runcmd": [["systemctl", "restart", "app.service"]],
    }
    assert base64.b64decode(user_data.encode(document)).decode() == document
