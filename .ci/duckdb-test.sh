#!/usr/bin/env bash
# Run the DuckDB interop test (interop/duckdb, a Go module of its own): it
# builds the sweep CLI from the main module, writes a data set and reads it
# back with DuckDB through cgo.
#
# Works from a fresh checkout with nothing cached: `go test` fetches only the
# modules whose packages this platform builds, i.e. the linux-amd64 DuckDB
# library (about 32 MB download, 130 MB unpacked) and not the other
# platforms'. Never run a bare `go mod download` or `go mod tidy` in
# interop/duckdb: both fetch every platform's library (hundreds of MB).
#
# Extra arguments go to `go test`, e.g. `bash .ci/duckdb-test.sh -run Fixture -v`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/interop/duckdb"

say() { printf 'duckdb-test: %s\n' "$*"; }

# cgo needs a C and a C++ compiler (the DuckDB library links libstdc++).
if ! command -v gcc >/dev/null || ! command -v g++ >/dev/null; then
  [ "$(id -u)" = 0 ] || { say "error: gcc and g++ are needed (apt-get install g++)" >&2; exit 1; }
  say "installing gcc and g++"
  export DEBIAN_FRONTEND=noninteractive
  apt-cache show --no-all-versions g++ >/dev/null 2>&1 || apt-get update -q
  apt-get install -y -q --no-install-recommends gcc g++ libc6-dev
fi

export CGO_ENABLED=1
case $(go env GOOS)/$(go env GOARCH) in
  linux/amd64) ;;
  *) say "note: go.sum pins only the linux-amd64 DuckDB library; on $(go env GOOS)/$(go env GOARCH) add it with GOFLAGS=-mod=mod" ;;
esac

t0=$SECONDS
# -mod=readonly: fail rather than edit go.mod/go.sum (and fetch more) when they
# do not cover what the build needs.
go test -mod=readonly -count=1 "$@" ./...
say "done in $((SECONDS - t0)) s"
