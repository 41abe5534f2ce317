#!/usr/bin/env bash
# Prints the path of an OpenTofu binary, building it once if needed. OpenTofu
# is not downloadable here, but its source is served by the Go module proxy;
# `go install` refuses it for its replace directives, so it is built inside the
# downloaded module (about four minutes on two cores) and cached outside the
# repo, where later runs and fresh clones on this machine find it.
set -euo pipefail
version=${TOFU_VERSION:-1.12.6}
cache=${TOFU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keymint}
bin=$cache/tofu-v$version
if [[ -x $bin ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
echo "tofu: building OpenTofu v$version from the Go module proxy (once, about four minutes)" >&2
dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/opentofu/opentofu@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -n $dir && -d $dir ]] || { echo "tofu: could not download github.com/opentofu/opentofu@v$version" >&2; exit 1; }
(cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" ./cmd/tofu)
mv "$bin.tmp" "$bin"
echo "$bin"
