#!/usr/bin/env bash
# The whole test suite: formatting, vet, every test under the race detector,
# and a short run of each fuzz target. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== generated code is up to date"
go generate ./...
if ! git diff --quiet -- '*_string.go' 2>/dev/null; then
  echo "go generate changed generated files; commit them:"; git diff --stat -- '*_string.go'; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go tool staticcheck ./...

echo "== PostgreSQL test cluster"
# The PostgreSQL backend's tests (and the e2e test of serve --db) run
# against a throwaway cluster; an existing CAPF_TEST_POSTGRES is used as it
# is.
if [ -z "${CAPF_TEST_POSTGRES:-}" ]; then
  eval "$(./scripts/pg-test-cluster.sh start)"
  trap './scripts/pg-test-cluster.sh stop "$CAPF_TEST_PG_DIR"' EXIT
  echo "started in $CAPF_TEST_PG_DIR"
fi

echo "== go test -race"
# The PKCS #11 tests fail instead of skipping when SoftHSM2 is missing.
export CAPF_REQUIRE_SOFTHSM=1
# So do the FreeRADIUS tests when freeradius or eapol_test is missing.
export CAPF_REQUIRE_FREERADIUS=1
go test -race -count=1 -timeout 30m ./...

echo "== fuzz (short)"
fuzztime=${FUZZTIME:-15s}
# fuzz PKG TARGET runs one fuzz target for $fuzztime. Go 1.26's fuzz
# coordinator can report "context deadline exceeded" at the end of the
# -fuzztime window on a loaded machine although nothing failed
# (golang/go#75804, fixed in Go 1.27): such a run, with no failing input
# written, is run once more; any other failure fails the suite.
fuzz() {
  local out try
  for try in 1 2; do
    if out=$(go test -run='^$' -fuzz="^$2\$" -fuzztime="$fuzztime" -fuzzminimizetime=2s "$1" 2>&1); then
      echo "$out"
      return 0
    fi
    echo "$out"
    if grep -q "Failing input written" <<<"$out" || ! grep -q "context deadline exceeded" <<<"$out"; then
      return 1
    fi
    echo "== $2: the fuzz coordinator's deadline race (golang/go#75804), no failing input: once more"
  done
  return 1
}
fuzz ./internal/wire/ FuzzDecode
fuzz ./internal/report/ FuzzParseImport
fuzz ./internal/trust/ FuzzParse
fuzz ./internal/keyref/ FuzzParse

echo "== all tests passed"
