#!/usr/bin/env bash
# Installs the system tools a make target needs, from Debian, if any is missing. Idempotent; the Makefile and .ci/run
# call it. Runs apt-get as root, or through sudo.
#   setup-system.sh plan   what `make plan` needs: Python and Graphviz for the architecture pictures
#   setup-system.sh        (or `test`) everything the tests need as well
set -euo pipefail
purpose="${1:-test}"
case "$purpose" in
  plan | test) ;;
  *) echo "setup-system: unknown purpose '$purpose' (expected: plan or test)" >&2; exit 2 ;;
esac

# command -> Debian package
declare -A NEEDED=(
  [make]=make
  [python3]=python3
  [dot]=graphviz
)
[ "$purpose" = plan ] || NEEDED+=(
  # The image template (packer/) is validated with Debian's Packer 1.6.6, its scripts with shellcheck and its unit
  # with systemd-analyze; the image hand-off's tests build throwaway git repositories.
  [packer]=packer
  [shellcheck]=shellcheck
  [systemd-analyze]=systemd
  # gitlab-ci-local (the pipeline's tests) copies each job's files with rsync, and npm builds its native regex
  # module (re2) from source when no prebuilt one can be downloaded: that needs a C++ compiler.
  [rsync]=rsync
  [g++]=g++
  [git]=git
)
# Node.js only when there is none: a newer one from elsewhere is fine (gitlab-ci-local 4.60.1 needs 18 or later).
if [ "$purpose" = test ]; then
  if ! command -v node >/dev/null 2>&1; then
    NEEDED[node]=nodejs
    NEEDED[npm]=npm
  elif ! command -v npm >/dev/null 2>&1; then
    NEEDED[npm]=npm
  fi
fi

missing=()
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
if python3 -c 'import ensurepip, venv' 2>/dev/null; then :; else missing+=(python3-venv); fi

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup-system: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
