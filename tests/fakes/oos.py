"""A local stand-in for OOS's GetSecretParameter (encrypted parameters), on 127.0.0.1 (built on localcloud/acs.py).

Like the API, it answers the value only when WithDecryption is true, and an unknown name with EntityNotExists.Parameter
(the code the provider treats as not found, service_alicloud_oos_v2.go).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.fakes.acs import FakeAcsApi, serve

__all__ = ["FakeOos", "serve"]


@dataclass
class FakeOos(FakeAcsApi):
    action = "GetSecretParameter"

    # parameter name -> its versions' values, oldest first (the latest is answered)
    parameters: dict[str, list[str]] = field(default_factory=dict)
    # (HTTP status, error code, message) answered instead, on successive requests (then the parameters are served)
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, object]]:
        number = len(self.requests)
        self.requests.append(query)
        if self.errors:
            status, code, message = self.errors.pop(0)
            return status, {"RequestId": f"req-{number}", "Code": code, "Message": message}
        name = query.get("Name", "")
        if name not in self.parameters:
            return 404, {
                "RequestId": f"req-{number}",
                "Code": "EntityNotExists.Parameter",
                "Message": "The specified parameter does not exist.",
            }
        versions = self.parameters[name]
        # The gateway reads booleans case-insensitively; the Python SDK sends True as "True".
        decrypted = query.get("WithDecryption", "").lower() == "true"
        return 200, {
            "RequestId": f"req-{number}",
            "Parameter": {
                "Name": name,
                "Type": "Secret",
                "ParameterVersion": len(versions),
                "Value": versions[-1] if decrypted else "",
            },
        }
