# Sourced by every job that runs Pulumi or touches the state bucket (the `.pulumi` job in .gitlab-ci.yml):
#   1. the program's virtualenv (.venv, the one Pulumi.yaml names), rebuilt only when requirements.txt changed;
#   2. temporary cloud credentials from the job's OIDC token (pipeline/ci_credentials.py);
#   3. the Pulumi state backend on OSS.
# Sourced, not run, so that the exports reach the job's script. Fails the job, with the tool's message, on any problem.
set -euo pipefail

# 1. Virtualenv. CI_REUSE_VENV names an existing, complete virtualenv to use as it is (a shell runner that keeps one,
# and the pipeline's own tests); otherwise .venv is (re)built when requirements.txt differs from what it was built
# from, so the cached .venv costs nothing on most jobs.
if [ -n "${CI_REUSE_VENV:-}" ]; then
  venv="$CI_REUSE_VENV"
  # Pulumi.yaml names .venv, and the engine's dynamic-provider plugin (the health gate) runs the Python found there.
  [ -e .venv ] || ln -s "$venv" .venv
else
  venv="$PWD/.venv"
  wanted="$(sha256sum requirements.txt | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null || true)" != "$wanted" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
    echo "$wanted" >"$venv/.requirements.sha256"
  fi
fi
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"

# 2. Credentials: assign first, so that a failed exchange fails the job here (an `eval "$(…)"` would hide it).
credentials="$(python -m pipeline.ci_credentials)"
eval "$credentials"
unset credentials

# 3. State on OSS through its S3-compatible API. OSS accepts only virtual-hosted-style requests, which is what the AWS
# SDK v2 (awssdk=v2) sends by default; it does not support the SDK's default request checksums, hence the two
# `when_required` settings.
: "${STATE_BUCKET:?set STATE_BUCKET (CI/CD variable): the OSS bucket made by python -m pipeline.state_bucket}"
: "${OSS_REGION:?set OSS_REGION (CI/CD variable): region of the state bucket, e.g. cn-hangzhou}"
# A local S3 server on 127.0.0.1 (the pipeline's own tests) has no per-bucket host names, so only there requests are
# path-style (gocloud.dev's s3blob `use_path_style`).
path_style=""
case "${OSS_ENDPOINT:-}" in http://127.0.0.1:*) path_style="&use_path_style=true" ;; esac
export PULUMI_BACKEND_URL="s3://${STATE_BUCKET}?region=${OSS_REGION}&endpoint=${OSS_ENDPOINT:-https://s3.oss-${OSS_REGION}.aliyuncs.com}&awssdk=v2${path_style}"
unset path_style
export AWS_REGION="$OSS_REGION"
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
set +u
