// Package backup is the archive `capf backup` writes and `capf restore`
// reads: a tar file (gzip-compressed when its name ends in .gz or .tgz)
// whose first entry, manifest.json, names the format, the capf version,
// the backend and schema version of the database it came from, when it
// was made, and the size, mode and SHA-256 of every other entry: the
// database's tables in dbdump's neutral form (db/TABLE.jsonl) and the
// data directory's files (files/…).
//
// Reading an archive verifies all of it before anything is restored: a
// file that is not such an archive, an entry changed, missing or added,
// or an archive cut short is refused with an error that says which, and
// the entries are only ever staged in a directory the caller removes.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/fault"
)

// Format is the manifest's format name; FormatVersion its version.
const (
	Format        = "capf-backup"
	FormatVersion = 1
	ManifestName  = "manifest.json"
	// DBPrefix and FilesPrefix are the folders of the table dumps and of
	// the data directory's files inside an archive.
	DBPrefix    = "db/"
	FilesPrefix = "files/"
)

// maxManifest bounds the manifest read before it is trusted.
const maxManifest = 8 << 20

// Entry is one archived file as the manifest records it.
type Entry struct {
	Name   string      `json:"name"`
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"`
	SHA256 string      `json:"sha256"`
	Rows   int64       `json:"rows,omitempty"` // table dumps: the number of rows
}

// Manifest describes an archive.
type Manifest struct {
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	CAPFVersion   string    `json:"capf_version"`
	Backend       string    `json:"backend"`
	SchemaVersion int       `json:"schema_version"`
	CreatedAt     time.Time `json:"created_at"`
	// PrivateKeys says whether the archive holds private keys in the
	// clear (a SQLite data directory's key files).
	PrivateKeys bool    `json:"private_keys"`
	Entries     []Entry `json:"entries"`
}

// Tables returns the names of the tables the archive holds.
func (m Manifest) Tables() []string {
	var out []string
	for _, e := range m.Entries {
		if t, ok := strings.CutPrefix(e.Name, DBPrefix); ok {
			out = append(out, strings.TrimSuffix(t, ".jsonl"))
		}
	}
	return out
}

// Builder collects the entries of an archive in a staging directory, so
// that each entry's size and checksum are known before the archive is
// written.
type Builder struct {
	dir     string
	entries []Entry
	seen    map[string]bool
}

// NewBuilder stages entries in dir (which the caller creates, mode 0700,
// and removes).
func NewBuilder(dir string) *Builder { return &Builder{dir: dir, seen: map[string]bool{}} }

// stagePath is where the entry name is staged.
func (b *Builder) stagePath(i int) string { return filepath.Join(b.dir, fmt.Sprintf("entry-%06d", i)) }

// entryWriter stages one entry and records it when closed.
type entryWriter struct {
	b   *Builder
	f   *os.File
	bw  *bufio.Writer
	h   hashCount
	e   Entry
	row interface{ Rows() int64 }
}

type hashCount struct {
	sum interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (h *hashCount) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	return h.sum.Write(p)
}

func (b *Builder) create(name string, mode fs.FileMode) (*entryWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if b.seen[name] {
		return nil, fmt.Errorf("backup: entry %s added twice", name)
	}
	b.seen[name] = true
	f, err := os.OpenFile(b.stagePath(len(b.entries)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup: stage %s: %w", name, err)
	}
	b.entries = append(b.entries, Entry{Name: name, Mode: mode.Perm()})
	w := &entryWriter{b: b, f: f, e: Entry{Name: name, Mode: mode.Perm()}}
	w.h.sum = sha256.New()
	w.bw = bufio.NewWriterSize(io.MultiWriter(f, &w.h), 64<<10)
	return w, nil
}

func (w *entryWriter) Write(p []byte) (int, error) { return w.bw.Write(p) }

func (w *entryWriter) finish() error {
	if err := w.bw.Flush(); err != nil {
		w.f.Close()
		return fmt.Errorf("backup: stage %s: %w", w.e.Name, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("backup: stage %s: %w", w.e.Name, err)
	}
	w.e.Size = w.h.n
	w.e.SHA256 = hex.EncodeToString(w.h.sum.Sum(nil))
	if w.row != nil {
		w.e.Rows = w.row.Rows()
	}
	for i := range w.b.entries {
		if w.b.entries[i].Name == w.e.Name {
			w.b.entries[i] = w.e
		}
	}
	return nil
}

// tableWriter is a dbdump.RowWriter that stages a table's stream.
type tableWriter struct {
	*dbdump.Writer
	ew *entryWriter
}

func (t tableWriter) Close() error {
	if err := t.Writer.Close(); err != nil {
		return err
	}
	return t.ew.finish()
}

// Sink returns the dbdump.Sink that stages each table as db/TABLE.jsonl.
func (b *Builder) Sink() dbdump.Sink {
	return func(h dbdump.Header) (dbdump.RowWriter, error) {
		ew, err := b.create(DBPrefix+h.Table+".jsonl", 0o600)
		if err != nil {
			return nil, err
		}
		w, err := dbdump.NewWriter(ew, h)
		if err != nil {
			return nil, err
		}
		ew.row = w
		return tableWriter{Writer: w, ew: ew}, nil
	}
}

// AddFile stages the file at src as files/rel with its permission bits.
func (b *Builder) AddFile(rel, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	ew, err := b.create(FilesPrefix+filepath.ToSlash(rel), st.Mode())
	if err != nil {
		return err
	}
	if _, err := io.Copy(ew, f); err != nil {
		ew.f.Close()
		return fmt.Errorf("backup: read %s: %w", src, err)
	}
	return ew.finish()
}

// Write writes the archive to out (mode 0600, replacing any file there
// only once it is complete): m with the staged entries, then the entries.
// It returns the manifest written.
func (b *Builder) Write(out string, m Manifest) (Manifest, error) {
	m.Format, m.FormatVersion = Format, FormatVersion
	m.Entries = b.entries
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, fmt.Errorf("backup: manifest: %w", err)
	}
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	var w io.Writer = bw
	var gz *gzip.Writer
	if Compressed(out) {
		gz = gzip.NewWriter(bw)
		w = gz
	}
	tw := tar.NewWriter(w)
	hdr := func(name string, size int64, mode fs.FileMode) *tar.Header {
		return &tar.Header{Name: name, Size: size, Mode: int64(mode.Perm()), ModTime: m.CreatedAt, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(mb)), 0o600)); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	for i, e := range b.entries {
		if err := tw.WriteHeader(hdr(e.Name, e.Size, e.Mode)); err != nil {
			return m, fmt.Errorf("backup: %w", err)
		}
		sf, err := os.Open(b.stagePath(i))
		if err != nil {
			return m, fmt.Errorf("backup: %w", err)
		}
		_, err = io.Copy(tw, sf)
		sf.Close()
		if err != nil {
			return m, fmt.Errorf("backup: write %s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return m, fmt.Errorf("backup: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := f.Sync(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := f.Close(); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return m, fmt.Errorf("backup: %w", err)
	}
	ok = true
	return m, nil
}

// Compressed reports whether an archive named name is gzip-compressed.
func Compressed(name string) bool {
	return strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".tgz")
}

// checkName refuses an entry name that could leave the staging or target
// directory.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("entry name %q is not a clean relative path", name)
	}
	if !strings.HasPrefix(name, DBPrefix) && !strings.HasPrefix(name, FilesPrefix) {
		return fmt.Errorf("entry name %q is outside db/ and files/", name)
	}
	return nil
}

// Archive is a verified archive, its entries staged in a directory.
type Archive struct {
	Manifest Manifest
	dir      string
	index    map[string]int
}

// Open reads the archive at file, verifies it entirely and stages its
// entries in dir (which the caller creates, mode 0700, and removes). Its
// errors are Invalid and say what is wrong: not a capf backup, corrupted
// (an entry whose checksum or size differs from the manifest's, an entry
// the manifest does not list), or truncated (the archive ends early or
// lacks entries).
func Open(file, dir string) (*Archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fault.NotFoundf("backup %s: %v", file, err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var r io.Reader = br
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, truncatedOr(file, err, "its gzip header is damaged")
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fault.Invalidf("%s is not a capf backup archive: it is empty", file)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fault.Invalidf("%s is truncated: it ends inside its first entry", file)
		}
		return nil, fault.Invalidf("%s is not a capf backup archive: not a tar file (%v)", file, err)
	}
	if h.Name != ManifestName {
		return nil, fault.Invalidf("%s is not a capf backup archive: its first entry is %q, not %s", file, h.Name, ManifestName)
	}
	if h.Size > maxManifest {
		return nil, fault.Invalidf("%s is not a capf backup archive: its manifest is %d bytes", file, h.Size)
	}
	mb, err := io.ReadAll(io.LimitReader(tr, maxManifest))
	if err != nil {
		return nil, truncatedOr(file, err, "its manifest cannot be read")
	}
	var m Manifest
	if err := json.Unmarshal(mb, &m); err != nil || m.Format != Format {
		return nil, fault.Invalidf("%s is not a capf backup archive: its manifest is not a %s manifest", file, Format)
	}
	if m.FormatVersion != FormatVersion {
		return nil, fault.Invalidf("%s is a capf backup of format version %d; this capf reads version %d", file, m.FormatVersion, FormatVersion)
	}
	a := &Archive{Manifest: m, dir: dir, index: map[string]int{}}
	for i, e := range m.Entries {
		if err := checkName(e.Name); err != nil {
			return nil, fault.Invalidf("%s is corrupted: its manifest lists an %v", file, err)
		}
		if _, dup := a.index[e.Name]; dup {
			return nil, fault.Invalidf("%s is corrupted: its manifest lists %s twice", file, e.Name)
		}
		a.index[e.Name] = i
	}
	got := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, truncatedOr(file, err, "after "+fmt.Sprint(len(got))+" entries")
		}
		i, ok := a.index[h.Name]
		if !ok {
			return nil, fault.Invalidf("%s is corrupted: it holds %q, which its manifest does not list", file, h.Name)
		}
		if got[h.Name] {
			return nil, fault.Invalidf("%s is corrupted: it holds %s twice", file, h.Name)
		}
		got[h.Name] = true
		e := m.Entries[i]
		if h.Size != e.Size {
			return nil, fault.Invalidf("%s is corrupted: %s is %d bytes, its manifest says %d", file, e.Name, h.Size, e.Size)
		}
		sf, err := os.OpenFile(a.stagePath(i), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", e.Name, err)
		}
		sum := sha256.New()
		n, err := io.Copy(io.MultiWriter(sf, sum), tr)
		if cerr := sf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, truncatedOr(file, err, "in "+e.Name)
		}
		if n != e.Size {
			return nil, fault.Invalidf("%s is truncated: %s ends after %d of its %d bytes", file, e.Name, n, e.Size)
		}
		if hex.EncodeToString(sum.Sum(nil)) != e.SHA256 {
			return nil, fault.Invalidf("%s is corrupted: %s does not match its SHA-256 in the manifest", file, e.Name)
		}
	}
	var missing []string
	for _, e := range m.Entries {
		if !got[e.Name] {
			missing = append(missing, e.Name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fault.Invalidf("%s is truncated: %d of its entries are missing (first %s)", file, len(missing), missing[0])
	}
	// Drain what gzip has left, so a damaged trailer (CRC) is noticed.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, truncatedOr(file, err, "at its end")
	}
	return a, nil
}

// truncatedOr names an archive that ends early as truncated, anything else
// as corrupted.
func truncatedOr(file string, err error, where string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fault.Invalidf("%s is truncated: it ends early (%s)", file, where)
	}
	return fault.Invalidf("%s is corrupted: %s (%v)", file, where, err)
}

func (a *Archive) stagePath(i int) string { return filepath.Join(a.dir, fmt.Sprintf("entry-%06d", i)) }

// Tables implements dbdump.Source.
func (a *Archive) Tables() []string { return a.Manifest.Tables() }

// Open implements dbdump.Source: a reader of the staged table.
func (a *Archive) Open(table string) (*dbdump.Reader, io.Closer, error) {
	i, ok := a.index[DBPrefix+table+".jsonl"]
	if !ok {
		return nil, nil, fmt.Errorf("the archive has no table %s", table)
	}
	f, err := os.Open(a.stagePath(i))
	if err != nil {
		return nil, nil, err
	}
	r, err := dbdump.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("table %s: %w", table, err)
	}
	if r.Header().Table != table {
		f.Close()
		return nil, nil, fmt.Errorf("db/%s.jsonl holds the table %s", table, r.Header().Table)
	}
	return r, f, nil
}

// Files returns the data directory's files the archive holds, by path
// relative to the data directory (slash-separated).
func (a *Archive) Files() []Entry {
	var out []Entry
	for _, e := range a.Manifest.Entries {
		if rel, ok := strings.CutPrefix(e.Name, FilesPrefix); ok {
			e.Name = rel
			out = append(out, e)
		}
	}
	return out
}

// FilePath returns where the staged file rel (as Files names it) is.
func (a *Archive) FilePath(rel string) string {
	return a.stagePath(a.index[FilesPrefix+rel])
}
