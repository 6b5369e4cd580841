#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine:
# OpenSSL (the tests check issued certificates with `openssl verify`),
# Chromium (the browser tests drive the web UI headless with chromedp),
# PostgreSQL's server binaries (scripts/pg-test-cluster.sh starts a
# throwaway cluster for the PostgreSQL backend's tests), SoftHSM2 (the
# PKCS #11 tests keep keys in a software token), FreeRADIUS and
# wpa_supplicant's eapol_test (an e2e test runs docs/freeradius.md's EAP-TLS
# set-up with LSCs; the package also installs Debian's freeradius service,
# which the test does not use) and the Go modules pinned in go.mod. Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Fonts, so that screenshots show text rather than boxes.
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
{ [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null 2>&1; } || need+=(softhsm2)
command -v freeradius >/dev/null 2>&1 || need+=(freeradius)
command -v eapol_test >/dev/null 2>&1 || need+=(eapoltest)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
go mod download
