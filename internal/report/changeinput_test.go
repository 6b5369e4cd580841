package report_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
)

// TestParseImportNamesEveryBadValueOfARow: the one parser of device changes
// names every bad field of a row, and the import maps each back to its
// column (by the error's field, not its text), in the file's column order.
func TestParseImportNamesEveryBadValueOfARow(t *testing.T) {
	file := "Device Name,Key,Operation Completes By,Security Profile,Description\r\n" +
		"SEP0011223344AA,rsa1,tomorrow,secure,\"bell\x07\"\r\n"
	_, err := report.ParseImport(strings.NewReader(file))
	var re *device.RowErrors
	if !errors.As(err, &re) {
		t.Fatalf("ParseImport error %v, want RowErrors", err)
	}
	var cols []string
	for _, p := range re.Problems {
		if p.Line != 2 {
			t.Errorf("problem %v: line %d, want 2", p, p.Line)
		}
		cols = append(cols, p.Column)
	}
	want := []string{"Key", "Operation Completes By", "Security Profile", "Description"}
	if !reflect.DeepEqual(cols, want) {
		t.Errorf("columns blamed = %q, want %q\n%v", cols, want, err)
	}
}
