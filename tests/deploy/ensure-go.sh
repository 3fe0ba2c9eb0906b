#!/usr/bin/env bash
# A Go toolchain >= 1.24 for the deployment checks' Go tools (Docker Compose, the
# Dockerfile check): `go` from PATH if recent enough, else the official toolchain.
#   ensure-go.sh     prints the path of the go binary
set -euo pipefail
cache="${PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/finals-platform}"
# Without one (Debian 12's golang-go is 1.19), fetch the official
# toolchain, which the Go module proxy serves as the module golang.org/toolchain (what
# GOTOOLCHAIN=auto does), into the cache.
go_ok() { command -v "$1" >/dev/null && "$1" version 2>/dev/null | grep -qE 'go1\.(2[4-9]|[3-9][0-9])'; }
go=go
if ! go_ok go; then
  gover="${GO_TOOLCHAIN_VERSION:-1.24.9}"
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
  go="$cache/go-$gover/go/bin/go"
  if ! go_ok "$go"; then
    echo "fetching the Go $gover toolchain from the Go module proxy into $cache/go-$gover" >&2
    proxy="${GOPROXY:-https://proxy.golang.org}"; proxy="${proxy%%,*}"
    zip="$cache/go-$gover.zip"
    mkdir -p "$cache"
    curl -fsSL -o "$zip.tmp" "$proxy/golang.org/toolchain/@v/v0.0.1-go$gover.linux-$arch.zip"
    rm -rf "$cache/go-$gover" && mkdir -p "$cache/go-$gover"
    python3 - "$zip.tmp" "$cache/go-$gover" <<'PY'
import sys, zipfile
prefix = "golang.org/toolchain@"
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        name = info.filename.split("/", 2)[2] if info.filename.startswith(prefix) else info.filename
        if not name or name.endswith("/"):
            continue
        target = f"{sys.argv[2]}/go/{name}"
        import os
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            dst.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, mode or (0o755 if name.startswith(("bin/", "pkg/tool/")) else 0o644))
PY
    rm -f "$zip.tmp"
    go_ok "$go" || { echo "install-compose.sh: could not set up Go $gover" >&2; exit 1; }
  fi
fi
command -v "$go"
