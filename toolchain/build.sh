#!/usr/bin/env bash
# Builds the Pulumi toolchain of ha-webapp from Go modules (see README.md) into a cache folder outside git:
#   ${HA_WEBAPP_TOOLCHAIN:-$HOME/.cache/ha-webapp/toolchain}/<key>/bin
# <key> hashes the pins (every go.mod/go.sum, every Go file here and this script), so nothing is rebuilt
# unless a pin changes. The bin folder is the last line of stdout; progress goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v go >/dev/null 2>&1 || {
	echo "toolchain: the Go toolchain (1.26 or later) is needed to build Pulumi from source; see toolchain/README.md" >&2
	exit 2
}

# Versions the binaries report. The CLI reports the pulumi pin; each provider reports the plugin version
# its Python SDK asks for, with semver build metadata naming the Terraform provider that is bridged.
PULUMI_VERSION=v3.260.0
PYHOST_VERSION=v3.79.0
ALICLOUD_VERSION=4.0.0+tf-alicloud-1.285.0
RANDOM_VERSION=4.21.4+tf-random-e1092b0cfc07

cd "$here"
key="$(
	find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name build.sh \) -print0 |
		LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
)"
root="${HA_WEBAPP_TOOLCHAIN:-$HOME/.cache/ha-webapp/toolchain}"
out="$root/$key"
if [[ -f "$out/complete" ]]; then
	echo "$out/bin"
	exit 0
fi

mkdir -p "$root"
tmp="$(mktemp -d "$root/.build-$key.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"

export CGO_ENABLED=0 GOFLAGS=-mod=readonly
build() { # build <module dir> <output name> <ldflags> <package>
	local start=$SECONDS
	echo "building $2 (module toolchain/$1) ..." >&2
	# -s -w: no symbol table or DWARF (stack traces keep function names); about a third less disk.
	(cd "$here/$1" && go build -trimpath -ldflags "-s -w $3" -o "$tmp/bin/$2" "$4")
	echo "built $2 in $((SECONDS - start))s" >&2
}

build cli pulumi "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
	github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
# STOPGAP (README.md): the host of our pin is not served; this one is from sdk/v3 $PYHOST_VERSION. The CLI talks to
# it through our adapter (pyhost-adapter/main.go), installed as the host, which starts it under the -stopgap name
# and fills in the RunPlugin field the old host needs to run policy packs. When the real host is buildable, build
# it as pulumi-language-python and delete these two builds and their modules.
build pyhost pulumi-language-python-stopgap \
	"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PYHOST_VERSION" \
	github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
build pyhost-adapter pulumi-language-python "" .
# The host runs programs through this shim, which it looks for next to its own binary. It comes from the
# sdk/v3 module zip at the pulumi pin (it must match the Python SDK the program's virtualenv has).
sdk_dir="$(cd "$here/cli" && go mod download -json github.com/pulumi/pulumi/sdk/v3 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$tmp/bin/pulumi-language-python-exec"
# The provider plugin that runs the program's dynamic resources (infra.health_gate), same module zip.
install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$tmp/bin/pulumi-resource-pulumi-python"
build alicloud pulumi-resource-alicloud "-X main.version=$ALICLOUD_VERSION" .
build random pulumi-resource-random "-X main.version=$RANDOM_VERSION" .

touch "$tmp/complete"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out/bin"
