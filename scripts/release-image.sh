#!/usr/bin/env bash
# The release's container image, after `goreleaser release` (make
# release-snapshot): the image built from goreleaser's linux/amd64 keymint
# binary, saved as dist/keymint_<version>_linux_amd64.oci.tar, with its
# SHA-256 in dist/keymint_<version>_image_SHA256SUMS.
#
# Why not goreleaser's own docker step: GoReleaser OSS drives only `docker`
# (`dockers`, deprecated in v2.17) or `docker buildx` (`dockers_v2`); its
# podman backend is GoReleaser Pro, and so are global `after` hooks. Podman,
# which builds images here without a daemon, does not emulate `buildx`
# (`--load`, `buildx inspect`). So the image is built by scripts/image.sh from
# the same Containerfile as `make image`, in a throwaway image store (vfs: no
# overlay or runtime needed for FROM scratch + COPY), offline.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=${DIST:-dist}
[ -f "$dist/metadata.json" ] || { echo "release-image.sh: no $dist/metadata.json: run goreleaser first (make release-snapshot)" >&2; exit 1; }
version=$(grep -o '"version": *"[^"]*"' "$dist/metadata.json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
[ -n "$version" ] || { echo "release-image.sh: no version in $dist/metadata.json" >&2; exit 1; }
binary=$(ls "$dist"/keymint_linux_amd64*/keymint 2>/dev/null | head -1)
[ -n "$binary" ] || { echo "release-image.sh: goreleaser built no linux/amd64 keymint under $dist/" >&2; exit 1; }
store=$(mktemp -d)
trap 'podman --root "$store/storage" --runroot "$store/run" --storage-driver=vfs rmi -af >/dev/null 2>&1 || true; rm -rf "$store"' EXIT
archive="$dist/keymint_${version}_linux_amd64.oci.tar"
PODMAN=podman KEYMINT_BINARY=$binary OCI_ARCHIVE=$archive VERSION=$version \
	PODMAN_FLAGS="--root $store/storage --runroot $store/run --storage-driver=vfs" \
	bash scripts/image.sh "keymint:$version"
(cd "$dist" && sha256sum "$(basename "$archive")" > "keymint_${version}_image_SHA256SUMS")
echo "image: $archive ($(du -h "$archive" | cut -f1))"
