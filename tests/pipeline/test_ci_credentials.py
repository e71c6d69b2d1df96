"""The pipeline's OIDC exchange against a local STS: credentials a shell can use, and clean errors that leak nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import ci_credentials
from tests.fakes.sts import FakeSts, serve

TOKEN = "eyJhbGciOiJSUzI1NiJ9.the-jobs-token.signature"  # pragma: allowlist secret
ROLE = "acs:ram::1234567890123456:role/ha-webapp-deploy"
PROVIDER = "acs:ram::1234567890123456:oidc-provider/gitlab"


@pytest.fixture
def sts() -> Iterator[FakeSts]:
    with serve(FakeSts(trusted_token=TOKEN, role_arn=ROLE, provider_arn=PROVIDER)) as fake:
        yield fake


def job_environment(fake: FakeSts, **overrides: str) -> dict[str, str]:
    environ = {
        "ALIBABA_CLOUD_OIDC_TOKEN": TOKEN,
        "PIPELINE_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_STS_ENDPOINT": fake.endpoint,
        "ALIBABA_CLOUD_STS_PROTOCOL": "HTTP",
        "CI_JOB_ID": "4242",
        "CI_JOB_NAME": "deploy:prod",
    }
    environ.update(overrides)
    return {k: v for k, v in environ.items() if v}


def test_the_exported_credentials_reach_a_shell_intact(sts: FakeSts) -> None:
    # The secret the fake issues holds quotes, `$`, `/` and `+`: the export lines must survive `eval` unchanged.
    script = (
        'credentials="$("$PYTHON" -m pipeline.ci_credentials)" && eval "$credentials" && '
        'printf "%s\\n" "$ALIBABA_CLOUD_ACCESS_KEY_ID" "$ALIBABA_CLOUD_ACCESS_KEY_SECRET" '
        '"$ALIBABA_CLOUD_SECURITY_TOKEN" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" "$ALICLOUD_SECRET_KEY" '
        '"$SECURITY_TOKEN"'
    )
    result = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, **job_environment(sts), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        sts.issued_key_id,
        sts.issued_secret,
        sts.issued_token,
        sts.issued_secret,
        sts.issued_token,
        sts.issued_secret,
        sts.issued_token,
    ]
    assert "valid until 2031-01-01T00:00:00Z" in result.stderr
    (request,) = sts.requests
    assert request["RoleSessionName"] == "gitlab-4242-deploy-prod"
    assert request["DurationSeconds"] == "3600"


def test_every_missing_variable_is_named_and_nothing_is_exported(
    sts: FakeSts, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ci_credentials.main([], {"ALIBABA_CLOUD_STS_ENDPOINT": sts.endpoint}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    for name in ("ALIBABA_CLOUD_OIDC_TOKEN", "PIPELINE_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"):
        assert f"{name} is not set" in err
    assert "id_tokens" in err
    assert sts.requests == [], "nothing is sent while the job is misconfigured"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"PIPELINE_ROLE_ARN": "ha-webapp-deploy"}, "PIPELINE_ROLE_ARN is 'ha-webapp-deploy': expected acs"),
        # The stack map refers to a role variable nobody defined.
        ({"PIPELINE_ROLE_ARN": "$ALIBABA_CLOUD_ROLE_ARN_PROD"}, "($ALIBABA_CLOUD_ROLE_ARN_PROD is not defined)"),
        # A leftover project variable with the one role of every stack would outrank the stack map's role.
        ({"ALIBABA_CLOUD_ROLE_ARN": ROLE}, "ALIBABA_CLOUD_ROLE_ARN is set: that is the one role of every stack"),
        ({"ALIBABA_CLOUD_OIDC_PROVIDER_ARN": ROLE}, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN is 'acs:ram::"),
        ({"ALIBABA_CLOUD_STS_PROTOCOL": "ftp"}, "ALIBABA_CLOUD_STS_PROTOCOL is 'ftp': expected HTTPS"),
    ],
)
def test_a_malformed_variable_is_named_with_what_is_expected(
    sts: FakeSts, capsys: pytest.CaptureFixture[str], overrides: dict[str, str], expected: str
) -> None:
    assert ci_credentials.main([], job_environment(sts, **overrides)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in err


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ALIBABA_CLOUD_OIDC_TOKEN": "eyJ.a-token-for-another-project.sig"}, "AuthenticationFail.OIDCToken.Invalid"),
        ({"PIPELINE_ROLE_ARN": "acs:ram::1234567890123456:role/someone-elses"}, "NoPermission.AssumeRole"),
    ],
)
def test_a_refusal_by_sts_names_its_code_and_never_the_token(
    sts: FakeSts, capsys: pytest.CaptureFixture[str], overrides: dict[str, str], code: str
) -> None:
    environ = job_environment(sts, **overrides)
    assert ci_credentials.main([], environ) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"STS refused AssumeRoleWithOIDC for {environ['PIPELINE_ROLE_ARN']}: {code}" in err
    assert environ["ALIBABA_CLOUD_OIDC_TOKEN"] not in err


def test_an_unreachable_sts_is_a_clean_error_without_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    environ = job_environment(FakeSts(TOKEN, ROLE, PROVIDER, endpoint=closed), ALIBABA_CLOUD_STS_ENDPOINT=closed)
    assert ci_credentials.main([], environ) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"could not reach STS at {closed} ([Errno 111] Connection refused)" in err
    assert TOKEN not in err


def test_a_duration_outside_stss_limits_is_refused(sts: FakeSts, capsys: pytest.CaptureFixture[str]) -> None:
    assert ci_credentials.main(["--duration", "60"], job_environment(sts)) == 2
    assert "--duration is 60: expected 900 to 43200 seconds" in capsys.readouterr().err
    assert sts.requests == []


def test_packer_is_given_credentials_under_the_names_it_reads() -> None:
    # Packer's builder looks its credentials up by fixed names; a wrong one fails only in the image job, in the cloud.
    credentials = ci_credentials.Credentials("STS.id", "secret", "token", "2031-01-01T00:00:00Z")
    exported = {line.split("=")[0].removeprefix("export ") for line in credentials.exports().splitlines()}
    binary = Path(shutil.which("packer") or pytest.fail("packer is not installed")).read_bytes()
    for name in ("ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY", "SECURITY_TOKEN"):
        assert name.encode() in binary, f"Packer does not read {name}"
        assert name in exported, f"{name} is not exported for Packer"
