#!/usr/bin/env bash
# make bench: build, then run tools/bench, which writes BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${BENCH_FLAGS:-} $*" == *skip-terraform* ]] || command -v terraform >/dev/null || { echo "bench: terraform not on PATH (needed for the Terraform figures; pass BENCH_FLAGS=-skip-terraform to skip them)" >&2; exit 1; }
make --no-print-directory build
export CHECKPOINT_DISABLE=1
go run ./tools/bench ${BENCH_FLAGS:-} "$@"
