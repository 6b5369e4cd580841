#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine:
# OpenSSL (the tests check issued certificates with `openssl verify`) and the
# Go modules pinned in go.mod. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
go mod download
