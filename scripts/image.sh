#!/usr/bin/env bash
# Builds the keymint server image with podman (or PODMAN=docker) from a
# static build of ./cmd/keymint. Usage: scripts/image.sh [tag]
# PODMAN_FLAGS adds global flags, e.g. "--storage-driver=vfs --runtime runc"
# on machines without overlay support.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-keymint:${VERSION:-dev}}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/data"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION:-dev}" -o "$ctx/keymint" ./cmd/keymint
cp Containerfile "$ctx/"
# shellcheck disable=SC2086
${PODMAN:-podman} ${PODMAN_FLAGS:-} build --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx"
echo "built $tag"
