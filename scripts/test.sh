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
go test -race -count=1 -timeout 30m ./...

echo "== fuzz (short)"
fuzztime=${FUZZTIME:-15s}
go test -run='^$' -fuzz='^FuzzDecode$' -fuzztime="$fuzztime" -fuzzminimizetime=2s ./internal/wire/
go test -run='^$' -fuzz='^FuzzParseImport$' -fuzztime="$fuzztime" -fuzzminimizetime=2s ./internal/report/
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$fuzztime" -fuzzminimizetime=2s ./internal/trust/
go test -run='^$' -fuzz='^FuzzParse$' -fuzztime="$fuzztime" -fuzzminimizetime=2s ./internal/keyref/

echo "== all tests passed"
