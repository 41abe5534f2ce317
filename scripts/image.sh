#!/usr/bin/env bash
# Builds the keymint server image with podman (or PODMAN=docker) from a
# static build of ./cmd/keymint. Usage: scripts/image.sh [tag]
# PODMAN_FLAGS adds global flags, e.g. "--storage-driver=vfs --runtime runc"
# on machines without overlay support.
# KEYMINT_BINARY: put this linux/amd64 binary in the image instead of building
# one (make release-snapshot passes goreleaser's).
# OCI_ARCHIVE: also save the image there as an OCI archive (podman save
# --format oci-archive), to load with `podman load -i` or `docker load -i`.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-keymint:${VERSION:-dev}}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/data"
if [ -n "${KEYMINT_BINARY:-}" ]; then
	[ -x "$KEYMINT_BINARY" ] || { echo "image.sh: KEYMINT_BINARY=$KEYMINT_BINARY is not an executable file" >&2; exit 1; }
	cp "$KEYMINT_BINARY" "$ctx/keymint"
else
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION:-dev}" -o "$ctx/keymint" ./cmd/keymint
fi
cp Containerfile "$ctx/"
# shellcheck disable=SC2086
${PODMAN:-podman} ${PODMAN_FLAGS:-} build --format docker -t "$tag" -f "$ctx/Containerfile" "$ctx"
echo "built $tag"
if [ -n "${OCI_ARCHIVE:-}" ]; then
	rm -f "$OCI_ARCHIVE"
	# shellcheck disable=SC2086
	${PODMAN:-podman} ${PODMAN_FLAGS:-} save --format oci-archive -o "$OCI_ARCHIVE" "$tag"
	echo "saved $tag to $OCI_ARCHIVE"
fi
