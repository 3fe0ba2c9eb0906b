#!/usr/bin/env bash
# Healthy when every given TCP port of this container accepts connections on the
# container's own hostname (Spark binds its RPC ports to that address, not loopback).
#   healthcheck.sh PORT...
set -u
host="${HEALTHCHECK_HOST:-$(hostname)}"
for port in "$@"; do
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || { echo "$host:$port closed"; exit 1; }
done
