#!/usr/bin/env bash
# Tests and builds the example app into one static binary: the app:build job's script (.gitlab-ci.yml).
# Usage: app/build.sh OUTPUT   (from anywhere; OUTPUT relative to the current directory)
#
# The binary must be byte-for-byte reproducible: its SHA-256 is the image's identity in the catalog (docs/app.md), so
# the same sources must give the same checksum on every run, or every pipeline would build a new image. Hence no cgo
# (no libc from the build machine), -trimpath (no build paths), -buildvcs=false (no commit or dirty flag: a commit
# that does not touch app/ gives the same binary); tests/app/ builds it twice in two folders and compares.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 OUTPUT" >&2
  exit 2
fi
output="$(realpath -m "$1")"
cd "$(dirname "$0")"
go vet ./...
go test ./...
mkdir -p "$(dirname "$output")"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$output" .
echo "built $output: $(sha256sum "$output" | cut -d' ' -f1)"
