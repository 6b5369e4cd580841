// Package capfd reads the database of capfd, the Python CAPF daemon, and
// maps its devices onto this CAPF's (capf migrate-from capfd).
//
// capfd keeps one SQLite table, devices (device_name, operation,
// authentication, password, key_size, curve_name, certificate,
// serial_number, not_valid_before, not_valid_after). [Read] reads it
// read-only and bounded; [Map] turns each row into a
// [device.ImportRow] for [device.Service.Import], the path the CSV import
// takes, with the LSC capfd issued, and lists every row it cannot carry
// over with the reason; [DescribeCAPF] says how capfd's CAPF certificate
// differs from one this CAPF makes.
//
// The package imports only internal/device, internal/fault and
// internal/safetext, and the SQLite driver.
package capfd
