"""A local stand-in for KMS Secrets Manager's GetSecretValue, on 127.0.0.1 (built on tests/fakes/acs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.acs import FakeAcsApi, serve

__all__ = ["FakeKms", "serve"]


@dataclass
class FakeKms(FakeAcsApi):
    action = "GetSecretValue"

    # (secret name, version ID) -> value
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)
    # (HTTP status, error code, message) answered instead, on successive requests (then the secrets are served)
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        number = len(self.requests)
        self.requests.append(query)
        if self.errors:
            status, code, message = self.errors.pop(0)
            return status, {"RequestId": f"req-{number}", "Code": code, "Message": message}
        name, version = query.get("SecretName", ""), query.get("VersionId", "")
        if (name, version) not in self.secrets:
            return 404, {
                "RequestId": f"req-{number}",
                "Code": "Forbidden.ResourceNotFound",
                "Message": "The resource cannot be found.",
            }
        return 200, {
            "RequestId": f"req-{number}",
            "SecretName": name,
            "VersionId": version,
            "SecretData": self.secrets[(name, version)],
            "SecretDataType": "text",  # pragma: allowlist secret (a field name)
            "VersionStages": {"VersionStage": ["ACSCurrent"]},
        }
