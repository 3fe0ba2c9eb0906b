#!/usr/bin/env bash
# A real Compose implementation to validate docker-compose.yml on machines without a
# Docker engine: Docker Compose v2 (the `docker compose` plugin), built from source
# fetched through the Go module proxy, cached outside the repository. Uses an existing
# `docker compose` / `docker-compose` v2 when there is one.
#   install-compose.sh      prints the command to run (a path, or "docker compose")
set -euo pipefail
version="${COMPOSE_VERSION:-v2.40.3}"
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
bin="$cache/compose-$version/docker-compose"

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
if docker compose version >/dev/null 2>&1; then echo "docker compose"; exit 0; fi
if command -v docker-compose >/dev/null && docker-compose version 2>/dev/null | grep -q 'v2\.'; then
  command -v docker-compose; exit 0
fi

go="$("$(dirname "${BASH_SOURCE[0]}")/ensure-go.sh")"
export GOTOOLCHAIN=local
echo "building Docker Compose $version from the Go module proxy into $bin (a few minutes, once)" >&2
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
export GOPATH="${GOPATH:-$("$go" env GOPATH)}" GOFLAGS=-mod=mod CGO_ENABLED=0
# The module's go.mod has exclude directives, so `go install pkg@version` refuses it:
# download the module and build it as the main module instead.
dir="$(cd "$work" && "$go" mod download -json "github.com/docker/compose/v2@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$dir" ] || { echo "install-compose.sh: could not download github.com/docker/compose/v2@$version" >&2; exit 1; }
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$(dirname "$bin")"
(cd "$work/src" && "$go" build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
  -o "$bin.tmp" ./cmd) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
