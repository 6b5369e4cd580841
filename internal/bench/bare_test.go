package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

// TestRunBare: the bare loop enrols every phone (each certificate checked
// to certify the key the phone sent) with both CAPF keys, and refuses the
// options it does not take.
func TestRunBare(t *testing.T) {
	for _, key := range []string{"ec256", "rsa2048"} {
		t.Run(key, func(t *testing.T) {
			rep, err := RunBare(context.Background(), Options{Phones: 12, Concurrency: 4, CAPFKey: key, KeyPool: 2, SourceAddrs: 3}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Params.Mode != ModeBare || rep.Attempted != 12 || rep.Succeeded != 12 || rep.Failed != 0 || rep.PerSecond <= 0 {
				t.Errorf("report %+v, errors %q: want 12 of 12 in mode bare", rep, rep.FirstErrors)
			}
		})
	}
	for _, o := range []Options{
		{Phones: 1, DB: "postgres://db/capf"},
		{Phones: 1, Waiting: 1},
		{Phones: 1, CAPFKey: "dsa"},
		{Phones: 0},
	} {
		if _, err := RunBare(context.Background(), o, nil); fault.KindOf(err) != fault.Invalid {
			t.Errorf("RunBare(%+v): err = %v, want Invalid", o, err)
		}
	}
}

// TestReadBlobBounded: the bare server refuses a key over its bound before
// reading it.
func TestReadBlobBounded(t *testing.T) {
	var b bytes.Buffer
	if err := writeBlob(&b, make([]byte, bareMaxKey+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := readBlob(&b, bareMaxKey); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("readBlob of %d bytes: err = %v, want over the limit", bareMaxKey+1, err)
	}
	b.Reset()
	_ = writeBlob(&b, []byte("key"))
	if got, err := readBlob(&b, bareMaxKey); err != nil || string(got) != "key" {
		t.Errorf("readBlob = %q, %v", got, err)
	}
}
