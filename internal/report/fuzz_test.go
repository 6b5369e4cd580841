package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/report"
)

// FuzzParseImport checks that ParseImport never panics; that it fails only
// with a fault.Invalid error starting with "line "; and that what it
// accepts is well formed (unique normalized names, increasing lines) and
// survives a trip through WriteReport and back.
func FuzzParseImport(f *testing.F) {
	var rep bytes.Buffer
	if err := report.WriteReport(&rep, sampleDevices(), now); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		importFile(3),
		rep.String(),
		"\ufeff" + header + name1 + ",\"a,\"\"b\"\"\nc\",encrypted,lsc,,delete,ec521,NA\r\n,,,,,,,\r\n",
		"Device Name\n" + name1 + "\n" + name1 + "\n",
		"Key,Device Name\nrsa2048,CSFJDOE\nrsa1,CSFX\n",
		"Device Name,Description\n" + name1 + ",'=1+1\n",
		"Device Name,Description\n" + name1 + ",\"abc\n",
		"Device Name,Colour\n",
		header + name1 + ",d\r\n",
		"",
		"\ufeff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := report.ParseImport(bytes.NewReader(b))
		if err != nil {
			if fault.KindOf(err) != fault.Invalid || !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q (kind %v): want an Invalid error starting with \"line \"", err, fault.KindOf(err))
			}
			return
		}
		seen := make(map[string]bool)
		last := 0
		ds := make([]device.Device, len(rows))
		for i, r := range rows {
			if n, err := device.NormalizeName(r.Device.Name); err != nil || n != r.Device.Name {
				t.Fatalf("row %d: name %q is not normalized (%v)", i, r.Device.Name, err)
			}
			if seen[r.Device.Name] {
				t.Fatalf("row %d: duplicate name %q accepted", i, r.Device.Name)
			}
			seen[r.Device.Name] = true
			if r.Line <= last || r.Line < 2 {
				t.Fatalf("row %d: line %d after line %d", i, r.Line, last)
			}
			last = r.Line
			ds[i] = r.Device
		}
		var out bytes.Buffer
		if err := report.WriteReport(&out, ds, time.Time{}); err != nil {
			t.Fatalf("WriteReport: %v", err)
		}
		again, err := report.ParseImport(&out)
		if err != nil {
			t.Fatalf("the report of an accepted file does not import: %v\n%q", err, out.String())
		}
		if len(again) != len(rows) {
			t.Fatalf("%d rows after the round trip, want %d", len(again), len(rows))
		}
		for i := range rows {
			want, got := rows[i], again[i]
			want.Device.Deadline = want.Device.Deadline.Truncate(time.Second) // RFC 3339 without fractions
			if got.Given != want.Given || got.Device.Deadline.Compare(want.Device.Deadline) != 0 {
				t.Fatalf("row %d: round trip gave %+v, want %+v", i, got, want)
			}
			got.Device.Deadline, want.Device.Deadline = time.Time{}, time.Time{}
			if got.Device != want.Device {
				t.Fatalf("row %d: round trip gave %+v, want %+v", i, got.Device, want.Device)
			}
		}
	})
}
