package devserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"google.golang.org/protobuf/types/known/durationpb"
)

// prepareSQLite returns the SQLite persistence config for opts, sets up the schema of a new database
// file, and creates the namespaces that do not exist yet.
func prepareSQLite(opts Options, clusterName string) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	for k, v := range opts.SQLitePragmas {
		conf.ConnectAttributes[k] = v
	}

	if opts.DBFile == "" {
		// The plugin sets up the schema of an in-memory database itself. Connections are pooled
		// per name for the life of the process, so every server gets a name of its own.
		conf.DatabaseName = "bulwark-devserver-" + rand.Text()
		conf.ConnectAttributes["mode"] = "memory"
		conf.ConnectAttributes["cache"] = "shared"
	} else {
		path, err := filepath.Abs(opts.DBFile)
		if err != nil {
			return nil, fmt.Errorf("database file %s: %w", opts.DBFile, err)
		}
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("database file %s: path must not contain '?' or '#'", path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		conf.DatabaseName = path
		conf.ConnectAttributes["mode"] = "rwc"

		isNew, err := isNewFile(path)
		if err != nil {
			return nil, err
		}
		if isNew {
			if err := sqliteschema.SetupSchema(conf); err != nil {
				// Leave no half-initialised file behind: the next start would take it as set up.
				_ = os.Remove(path)
				return nil, fmt.Errorf("set up schema in %s: %w", path, err)
			}
		}
	}

	namespaces := make([]*sqliteschema.NamespaceConfig, 0, len(opts.Namespaces))
	for _, name := range opts.Namespaces {
		ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, opts.SearchAttributes)
		if err != nil {
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
		ns.Detail.Config.Retention = durationpb.New(opts.Retention)
		namespaces = append(namespaces, ns)
	}
	// Namespaces that exist already are left as they are.
	if err := sqliteschema.CreateNamespaces(conf, namespaces...); err != nil {
		return nil, fmt.Errorf("create namespaces: %w", err)
	}
	return conf, nil
}

// isNewFile reports whether path is absent or empty, that is, whether its schema must be set up.
func isNewFile(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("database file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("database file %s: not a regular file", path)
	}
	return fi.Size() == 0, nil
}
