package cli

import (
	"crypto/elliptic"
	"testing"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/keys"
)

// TestInspectClusterKeysTakesTheCAPFKey: migrate-from compares capfd's
// certificate with the cluster's CAPF key (id capf), not with the CA
// set's other keys of the same kind that sort after it (an issuing CA's
// issuing-ID, a staged ca-ID, the offline CA's ca-pending).
func TestInspectClusterKeysTakesTheCAPFKey(t *testing.T) {
	mk := func(cn string) []byte {
		k := ecKey(t, elliptic.P256())
		return sign(t, nil, caTemplate(cn), k.Public(), k).Raw
	}
	capf := mk("CAPF")
	recs := []keys.Record{
		{ID: "ca-0a0b", Kind: keys.KindCAPF, Chain: mk("staged")},
		{ID: caset.PendingKeyID, Kind: keys.KindCAPF, Chain: mk("pending")},
		{ID: keys.IDCAPF, Kind: keys.KindCAPF, Chain: capf},
		{ID: caset.IssuingKeyPrefix + "0c0d", Kind: keys.KindCAPF, Chain: mk("issuing")},
	}
	var tgt migrationTarget
	if err := inspectClusterKeys(t.Context(), recordStore(recs), &tgt); err != nil {
		t.Fatal(err)
	}
	if tgt.caCert == nil || string(tgt.caCert.Raw) != string(capf) {
		t.Errorf("the installation's CAPF certificate = %v, want the key capf's", tgt.caCert.Subject)
	}
}
