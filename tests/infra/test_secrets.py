"""No secret in clear: not in the repository, not in the stack files, not in the user data or the exported outputs of
any stack (evaluated under the mock runtime, where the generated passwords are known and can be looked for)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings

from plan.offline import PROJECT_DIR, Evaluation, is_secret, unwrap
from tests.conftest import STACKS
from tests.mutations import changed, plain
from tests.project_files import project_files

# Planted on purpose, to see the scans find them.
PLANTED_KEY = "kV8r2Qz7LmN4pX9wT3bY6cJ1dF5gH0sA"  # pragma: allowlist secret
PLAIN_PASSWORD = "hunter2hunter2"  # pragma: allowlist secret

# Stack-file keys that name a secret; their values must be `secure:` (encrypted by the stack's secrets provider).
SECRET_KEY = re.compile(r"password|secret|token|accesskey|privatekey|passphrase", re.I)


def scan(paths: list[Path]) -> dict[str, list[int]]:
    """What detect-secrets finds in the files: file -> line numbers."""
    secrets = SecretsCollection(root=str(PROJECT_DIR))
    with default_settings():
        secrets.scan_files(*(str(p) for p in paths))
    return {name: sorted(s["line_number"] for s in found) for name, found in secrets.json().items()}


def repository_files() -> list[Path]:
    return [PROJECT_DIR / name for name in project_files()]


def test_the_repository_holds_no_secret() -> None:
    files = repository_files()
    assert any(f.name == "Pulumi.prod.yaml" for f in files), "the scan must cover the stack files"
    assert scan(files) == {}, "audit the hit; a false positive gets `# pragma: allowlist secret` on its line"


def test_the_scanner_finds_a_planted_key(tmp_path: Path) -> None:
    planted = tmp_path / "deploy.sh"
    planted.write_text(f'export ALIBABA_CLOUD_ACCESS_KEY_SECRET="{PLANTED_KEY}"\n')
    assert scan([planted]) != {}


def secret_values_in_clear(document: Any, path: str = "") -> Iterator[str]:
    if isinstance(document, dict):
        if set(document) == {"secure"}:
            return
        for key, value in document.items():
            where = f"{path}.{key}" if path else str(key)
            if SECRET_KEY.search(str(key).split(":")[-1]) and not (isinstance(value, dict) and "secure" in value):
                yield where
            else:
                yield from secret_values_in_clear(value, where)
    elif isinstance(document, list):
        for i, value in enumerate(document):
            yield from secret_values_in_clear(value, f"{path}[{i}]")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_secrets_only_encrypted(stack: str) -> None:
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text())
    assert list(secret_values_in_clear(document)) == []


def test_a_plaintext_secret_in_a_stack_file_is_found() -> None:
    document = {
        "config": {
            "ha-webapp:database": {"password": PLAIN_PASSWORD},
            "ha-webapp:apiToken": {"secure": "v1"},
        }
    }
    assert list(secret_values_in_clear(document)) == ["config.ha-webapp:database.password"]


def generated_secrets(ev: Evaluation) -> set[str]:
    """The secret values this stack's program produced or was given (known under the mock runtime)."""
    values = {str(ev.exports[name]) for name in ev.secret_exports}
    for r in ev.resources:
        values |= {str(unwrap(v)) for v in r.inputs.values() if is_secret(v) and isinstance(unwrap(v), str)}
    return {v for v in values if len(v) >= 8}


def clear_text(ev: Evaluation) -> Iterator[tuple[str, str]]:
    """Every place a value is visible without decryption: plain inputs (user data decoded) and plain exports."""
    for r in ev.resources:
        for key, value in r.inputs.items():
            if is_secret(value) or key == "__provider":
                continue
            text = str(unwrap(value))
            yield f"{r.urn}.{key}", text
            if key == "userData":
                yield f"{r.urn}.userData (decoded)", base64.b64decode(text).decode()
    for name, value in ev.exports.items():
        if name not in ev.secret_exports:
            yield f"export {name}", str(value)


def leaks(ev: Evaluation) -> list[str]:
    secrets = generated_secrets(ev)
    return [where for where, text in clear_text(ev) for secret in secrets if secret in text]


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_in_user_data_inputs_or_outputs(evaluations: dict[str, Evaluation], stack: str) -> None:
    ev = evaluations[stack]
    assert generated_secrets(ev), "the database password must be among the secrets looked for"
    assert leaks(ev) == []


def test_a_leaked_password_is_found(evaluations: dict[str, Evaluation]) -> None:
    ev = evaluations["prod"]
    unencrypted = leaks(plain(ev, "database-account", "accountPassword"))
    assert [w for w in unencrypted if w.endswith("database-account.accountPassword")]
    password = str(ev.exports["db_password"])
    in_tags = changed(ev, "network-vpc", {"tags": {"project": "ha-webapp", "leak": password}})
    assert [w for w in leaks(in_tags) if w.endswith("network-vpc.tags")]
    exported = ev.exports | {"url": f"http://app:{password}@example.com"}
    assert "export url" in leaks(Evaluation(ev.stack, ev.resources, exported, ev.secret_exports, []))


def test_an_uploaded_key_and_a_webhook_token_stay_secret(tmp_path: Path) -> None:
    """The PEM key and the webhook URL given as secrets appear nowhere in clear: inputs, user data, exports, the plan
    text and JSON, the pictures."""
    from plan import diagram, plan_of
    from plan.text import Style, render
    from plan.topology import topology
    from tests.infra.test_stacks import PEM_KEY, WEBHOOK, uploaded_certificate

    ev = uploaded_certificate("prod")
    assert {PEM_KEY, WEBHOOK} <= generated_secrets(ev), "the scan must look for both"
    assert leaks(ev) == []
    plan = plan_of([ev], "ha-webapp")
    token = WEBHOOK.rsplit("=", 1)[1]
    for text in (render(plan, Style(False)), plan.model_dump_json(by_alias=True)):
        assert "PRIVATE KEY" not in text and token not in text
    for path in diagram.render(topology(ev), tmp_path, "ha-webapp"):
        content = path.read_bytes()
        assert b"PRIVATE KEY" not in content and token.encode() not in content
    # And the scan would have noticed.
    assert leaks(changed(ev, "network-vpc", {"tags": {"note": WEBHOOK}}))
