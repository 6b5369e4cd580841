package cli

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store"
)

// dbChoice is the database a command uses and where it was named.
type dbChoice struct {
	db   string // a postgres:// URL, or "" for the SQLite database of the data directory
	from string // "--db", "CAPF_DB", the capf.json path, or "" (none: SQLite)
}

// resolveDB returns the database of a command: --db when given (flagSet),
// else $CAPF_DB when set and not empty, else the database node setting of
// dataDir's capf.json, else none (the data directory's SQLite database).
// A capf.json that does not parse names no database here: the commands
// that read it (serve, config validate) report its problems. A database
// setting that is not a postgres:// URL, or one with a password in a file
// others may read, is an Invalid error naming the file; the error never
// shows the password.
func resolveDB(flag string, flagSet bool, getenv func(string) string, dataDir string) (dbChoice, error) {
	if flagSet {
		return dbChoice{db: flag, from: "--db"}, store.Check(flag)
	}
	if v := getenv(store.EnvDB); v != "" {
		if store.Check(v) != nil {
			return dbChoice{}, fault.Invalidf("%s: %v", store.EnvDB, config.CheckDatabase(v))
		}
		return dbChoice{db: v, from: store.EnvDB}, nil
	}
	path := filepath.Join(dataDir, config.FileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return dbChoice{}, nil // no file, or one the command cannot read either
	}
	if err != nil {
		return dbChoice{}, fault.Invalidf("%s: read the database setting: %v", path, err)
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(b, &doc) != nil {
		return dbChoice{}, nil
	}
	raw, ok := doc["database"]
	if !ok {
		return dbChoice{}, nil
	}
	var db string
	if err := json.Unmarshal(raw, &db); err != nil {
		return dbChoice{}, fault.Invalidf("%s: database: want a postgres:// URL as a string", path)
	}
	if err := config.CheckDatabase(db); err != nil {
		return dbChoice{}, fault.Invalidf("%s: database: %v", path, err)
	}
	if db == "" {
		return dbChoice{}, nil
	}
	if config.HasPassword(db) {
		fi, err := os.Stat(path)
		if err != nil {
			return dbChoice{}, fault.Invalidf("%s: %v", path, err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			return dbChoice{}, fault.Invalidf("%s holds the database password and others may read it (mode %04o): chmod 600 %s", path, mode, path)
		}
	}
	return dbChoice{db: db, from: path}, nil
}

// chooseDB sets g.db for cmd (see resolveDB). Help, version and the phone
// simulators need no database.
func (g *globals) chooseDB(cmd *cobra.Command) error {
	switch {
	case isHelp(cmd):
		return nil
	case cmd.Parent() != nil && !cmd.Parent().HasParent():
		switch cmd.Name() {
		case "version", "phone", "bench":
			return nil
		}
	}
	c, err := resolveDB(g.db, cmd.Flags().Changed("db"), os.Getenv, g.dataDir)
	if err != nil {
		return err
	}
	g.db, g.dbFrom = c.db, c.from
	return nil
}
