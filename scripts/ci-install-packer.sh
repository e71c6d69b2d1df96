#!/usr/bin/env bash
# Installs Packer PACKER_VERSION from HashiCorp's releases into /usr/local/bin for the image job, checking the
# download against HashiCorp's published SHA-256 sums. Does nothing when a `packer` is already on PATH (a runner
# that has one, and the pipeline's own tests, which put a recording stand-in there).
set -euo pipefail
if command -v packer >/dev/null 2>&1; then
  echo "ci-install-packer: using $(command -v packer)"
  exit 0
fi
: "${PACKER_VERSION:?set PACKER_VERSION, e.g. 1.11.2}"
base="https://releases.hashicorp.com/packer/${PACKER_VERSION}"
zip="packer_${PACKER_VERSION}_linux_amd64.zip"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --output "$work/$zip" "$base/$zip"
curl --fail --silent --show-error --location --output "$work/SHA256SUMS" "$base/packer_${PACKER_VERSION}_SHA256SUMS"
(cd "$work" && grep " ${zip}\$" SHA256SUMS | sha256sum --check --quiet -)
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("packer", "/usr/local/bin")' "$work/$zip"
chmod 0755 /usr/local/bin/packer
packer version
