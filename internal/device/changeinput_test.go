package device_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

func TestChangeInputParse(t *testing.T) {
	s := func(v string) *string { return &v }
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2027, 3, 31, 18, 0, 0, 0, time.UTC)
	zero := time.Time{}
	prof := func(p device.SecurityProfile) *device.SecurityProfile { return &p }
	mode := func(m device.AuthMode) *device.AuthMode { return &m }
	op := func(o device.Operation) *device.Operation { return &o }
	key := func(k device.KeySpec) *device.KeySpec { return &k }
	when := func(t time.Time) *time.Time { return &t }
	tests := []struct {
		name string
		in   device.ChangeInput
		want device.Change
	}{
		{"nothing-given", device.ChangeInput{}, device.Change{}},
		{"description", device.ChangeInput{Description: s("desk 4")}, device.Change{Description: s("desk 4")}},
		{"description/empty-clears", device.ChangeInput{Description: s("")}, device.Change{Description: s("")}},
		{"profile/name", device.ChangeInput{SecurityProfile: s("non-secure")}, device.Change{SecurityProfile: prof(device.NonSecure)}},
		{"profile/label", device.ChangeInput{SecurityProfile: s("Non Secure")}, device.Change{SecurityProfile: prof(device.NonSecure)}},
		{"profile/upper", device.ChangeInput{SecurityProfile: s("ENCRYPTED")}, device.Change{SecurityProfile: prof(device.Encrypted)}},
		{"mode/name", device.ChangeInput{AuthMode: s("lsc")}, device.Change{AuthMode: mode(device.AuthLSC)}},
		{"mode/label", device.ChangeInput{AuthMode: s("By Authentication String")}, device.Change{AuthMode: mode(device.AuthString)}},
		{"mode/bat", device.ChangeInput{AuthMode: s("By Existing Certificate (precedence to LSC)")}, device.Change{AuthMode: mode(device.AuthLSC)}},
		{"string", device.ChangeInput{AuthString: s("1234")}, device.Change{AuthString: s("1234")}},
		{"string/empty-clears", device.ChangeInput{AuthString: s("")}, device.Change{AuthString: s("")}},
		{"generate", device.ChangeInput{GenerateString: true}, device.Change{GenerateString: true}},
		{"operation/name", device.ChangeInput{Operation: s("install")}, device.Change{Operation: op(device.OpInstall)}},
		{"operation/bat", device.ChangeInput{Operation: s("Install/Upgrade")}, device.Change{Operation: op(device.OpInstall)}},
		{"operation/label", device.ChangeInput{Operation: s("No Pending Operation")}, device.Change{Operation: op(device.OpNone)}},
		{"key/name", device.ChangeInput{Key: s("ec256")}, device.Change{Key: key(device.EC256)}},
		{"key/label", device.ChangeInput{Key: s("RSA 2048")}, device.Change{Key: key(device.RSA2048)}},
		{"key/bat-size", device.ChangeInput{Key: s("2048")}, device.Change{Key: key(device.RSA2048)}},
		{"deadline/rfc3339", device.ChangeInput{Deadline: s("2027-03-31T18:00:00Z")}, device.Change{Deadline: when(at)}},
		{"deadline/rfc3339-offset", device.ChangeInput{Deadline: s("2027-03-31T20:00:00+02:00"), Loc: berlin}, device.Change{Deadline: when(at)}},
		{"deadline/form-utc", device.ChangeInput{Deadline: s("2027-03-31T18:00")}, device.Change{Deadline: when(at)}},
		{"deadline/form-seconds", device.ChangeInput{Deadline: s("2027-03-31T18:00:00")}, device.Change{Deadline: when(at)}},
		{"deadline/form-in-zone", device.ChangeInput{Deadline: s("2027-03-31T20:00"), Loc: berlin}, device.Change{Deadline: when(at)}},
		{"deadline/report", device.ChangeInput{Deadline: s("2027-03-31 18:00")}, device.Change{Deadline: when(at)}},
		{"deadline/empty-clears", device.ChangeInput{Deadline: s("")}, device.Change{Deadline: when(zero)}},
		{"deadline/none-clears", device.ChangeInput{Deadline: s(" None ")}, device.Change{Deadline: when(zero)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Parse()
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if got.Deadline != nil && got.Deadline.Location() != time.UTC {
				t.Errorf("deadline %v is not in UTC", got.Deadline)
			}
		})
	}
}

func TestChangeInputParseNamesEveryBadField(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name   string
		in     device.ChangeInput
		fields []string // every field blamed, in order
		says   string   // the first message contains it
	}{
		{"profile", device.ChangeInput{SecurityProfile: s("secure-ish")}, []string{"security_profile"}, `security profile "secure-ish"`},
		{"profile/empty", device.ChangeInput{SecurityProfile: s("")}, []string{"security_profile"}, "want non-secure"},
		{"mode", device.ChangeInput{AuthMode: s("pin")}, []string{"auth_mode"}, `authentication mode "pin"`},
		{"mode/empty", device.ChangeInput{AuthMode: s("")}, []string{"auth_mode"}, "want string, null"},
		{"string/letters", device.ChangeInput{AuthString: s("12ab")}, []string{"auth_string"}, "4 to 10 digits"},
		{"string/short", device.ChangeInput{AuthString: s("123")}, []string{"auth_string"}, "4 to 10 digits"},
		{"string-and-generate", device.ChangeInput{AuthString: s("1234"), GenerateString: true}, []string{"generate_string"}, "not both"},
		{"operation", device.ChangeInput{Operation: s("reinstall")}, []string{"operation"}, `certificate operation "reinstall"`},
		{"key", device.ChangeInput{Key: s("rsa1000")}, []string{"key"}, `key "rsa1000"`},
		{"deadline/words", device.ChangeInput{Deadline: s("tomorrow")}, []string{"deadline"}, "want a date and time"},
		{"deadline/us-style", device.ChangeInput{Deadline: s("03/31/2027")}, []string{"deadline"}, "RFC 3339"},
		{"deadline/seconds-in-report-form", device.ChangeInput{Deadline: s("2027-03-31 18:00:00")}, []string{"deadline"}, "RFC 3339"},
		{"deadline/year-too-early", device.ChangeInput{Deadline: s("0001-01-01T00:00:00Z")}, []string{"deadline"}, "year must be from 2000 to 9999"},
		{"deadline/year-past-9999-in-utc", device.ChangeInput{Deadline: s("9999-12-31T23:00:00-02:00")}, []string{"deadline"}, "year must be from 2000 to 9999"},
		{"all-at-once", device.ChangeInput{
			Description: s("fine"), SecurityProfile: s("x"), AuthMode: s("y"), AuthString: s("z"), GenerateString: true,
			Operation: s("w"), Key: s("v"), Deadline: s("u"),
		}, []string{"security_profile", "auth_mode", "auth_string", "generate_string", "operation", "key", "deadline"}, `security profile "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Parse()
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", got)
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("error %v is not Invalid", err)
			}
			var fe *device.FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not *FieldErrors", err)
			}
			var fields []string
			for _, e := range fe.Errors {
				fields = append(fields, fault.FieldOf(e))
			}
			if !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("fields blamed = %q, want %q", fields, tt.fields)
			}
			if fault.FieldOf(err) != tt.fields[0] {
				t.Errorf("FieldOf = %q, want the first, %q", fault.FieldOf(err), tt.fields[0])
			}
			if msg := fault.Message(err); !strings.Contains(msg, tt.says) {
				t.Errorf("Message = %q, want it to contain %q", msg, tt.says)
			}
			if by := device.ErrorsByField(err); len(by) != len(tt.fields) {
				t.Errorf("ErrorsByField has %d fields, want %d", len(by), len(tt.fields))
			}
			if !reflect.DeepEqual(got, device.Change{}) {
				t.Errorf("a failed parse returned %+v, want no change", got)
			}
		})
	}
}
