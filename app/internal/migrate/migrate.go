// Package migrate applies the app's embedded SQL migrations in order, each once, recorded with its checksum.
//
// The rules, which the tests pin down without a database:
//   - a migration file is NNNN_name.sql (four digits, then lower-case letters, digits and _); versions are unique;
//   - applied migrations are recorded in schema_migrations with their SHA-256: a file changed after it was applied is
//     refused, never re-run;
//   - a pending migration older than one already applied is refused (someone merged it late): apply order must be
//     the same in every environment;
//   - a migration recorded in the database but unknown to this binary is left alone (an older release runs after a
//     newer one migrated: a rollback), so schema changes must stay compatible with the release before them;
//   - the whole run holds one lock (MySQL's GET_LOCK in the real store), so two runs never migrate at once: the
//     second waits, then finds nothing to do.
package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Migration is one embedded SQL file.
type Migration struct {
	Version  int
	Name     string // the file name, e.g. 0001_create_visits.sql
	SQL      string
	Checksum string // hex SHA-256 of the file's bytes
}

// Applied is one row of schema_migrations.
type Applied struct {
	Version  int
	Name     string
	Checksum string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// Load reads every *.sql file of dir in fsys, in version order. Any other file, a badly named .sql file, a duplicate
// version or an empty migration is an error: a typo must not silently skip a schema change.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var migrations []Migration
	seen := map[int]string{}
	for _, entry := range entries {
		if entry.IsDir() {
			return nil, fmt.Errorf("migrations: %s is a folder; migrations are files named NNNN_name.sql", entry.Name())
		}
		match := fileName.FindStringSubmatch(entry.Name())
		if match == nil {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql (four digits, then a-z, 0-9 and _)", entry.Name())
		}
		version, _ := strconv.Atoi(match[1]) // four digits always parse
		if version == 0 {
			return nil, fmt.Errorf("migrations: %s: versions start at 0001", entry.Name())
		}
		if other, ok := seen[version]; ok {
			return nil, fmt.Errorf("migrations: %s and %s have the same version %04d", other, entry.Name(), version)
		}
		seen[version] = entry.Name()
		body, err := readAll(fsys, path.Join(dir, entry.Name()))
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(stripComments(string(body))) == "" {
			return nil, fmt.Errorf("migrations: %s holds no SQL statement", entry.Name())
		}
		sum := sha256.Sum256(body)
		migrations = append(migrations, Migration{version, entry.Name(), string(body), hex.EncodeToString(sum[:])})
	}
	sort.Slice(migrations, func(i, j int) bool { return migrations[i].Version < migrations[j].Version })
	return migrations, nil
}

func readAll(fsys fs.FS, name string) ([]byte, error) {
	file, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	defer file.Close()
	body, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("migrations: reading %s: %w", name, err)
	}
	return body, nil
}

// stripComments drops "-- " line comments, enough to tell a migration of only comments from one with SQL.
func stripComments(sql string) string {
	var kept []string
	for _, line := range strings.Split(sql, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// Pending returns the migrations still to apply, in order, or why the database and the files disagree.
func Pending(available []Migration, applied []Applied) ([]Migration, error) {
	done := map[int]Applied{}
	highest := 0
	for _, row := range applied {
		done[row.Version] = row
		if row.Version > highest {
			highest = row.Version
		}
	}
	var pending []Migration
	for _, m := range available {
		row, ok := done[m.Version]
		if !ok {
			if m.Version < highest {
				return nil, fmt.Errorf("migration %s is pending but %04d is already applied: migrations must be applied in"+
					" order; give it a version after %04d", m.Name, highest, highest)
			}
			pending = append(pending, m)
			continue
		}
		if row.Checksum != m.Checksum {
			return nil, fmt.Errorf("migration %s was changed after it was applied (recorded checksum %s, file %s): add"+
				" a new migration instead of editing an applied one", m.Name, row.Checksum, m.Checksum)
		}
	}
	return pending, nil
}

// Store is what a run needs from the database; the MySQL store is in mysql.go, the tests use a fake.
type Store interface {
	// Lock blocks until this run holds the migration lock, or fails (timeout, connection).
	Lock(ctx context.Context) error
	Unlock(ctx context.Context) error
	// Applied creates schema_migrations if needed and returns its rows.
	Applied(ctx context.Context) ([]Applied, error)
	// Apply runs the migration's SQL and records it in schema_migrations.
	Apply(ctx context.Context, m Migration) error
}

// Report says what a run did, for the log.
type Report struct {
	Applied   []string
	UpToDate  bool
	Unknown   []string // versions in the database that this binary does not ship
	Available int
}

// Run applies what is pending, holding the store's lock for the whole run.
func Run(ctx context.Context, store Store, available []Migration) (report Report, err error) {
	report.Available = len(available)
	if err := store.Lock(ctx); err != nil {
		return report, fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		if unlockErr := store.Unlock(context.WithoutCancel(ctx)); unlockErr != nil && err == nil {
			err = fmt.Errorf("releasing the migration lock: %w", unlockErr)
		}
	}()
	// Read what is applied only once the lock is held: a run that waited sees what the other one did.
	applied, err := store.Applied(ctx)
	if err != nil {
		return report, fmt.Errorf("reading schema_migrations: %w", err)
	}
	known := map[int]bool{}
	for _, m := range available {
		known[m.Version] = true
	}
	for _, row := range applied {
		if !known[row.Version] {
			report.Unknown = append(report.Unknown, row.Name)
		}
	}
	pending, err := Pending(available, applied)
	if err != nil {
		return report, err
	}
	for _, m := range pending {
		if err := store.Apply(ctx, m); err != nil {
			return report, &Failed{Name: m.Name, Err: err}
		}
		report.Applied = append(report.Applied, m.Name)
	}
	report.UpToDate = len(pending) == 0
	return report, nil
}

// Failed names the migration that failed and carries the database's message.
type Failed struct {
	Name string
	Err  error
}

func (f *Failed) Error() string { return fmt.Sprintf("migration %s failed: %v", f.Name, f.Err) }
func (f *Failed) Unwrap() error { return f.Err }

// ErrLockTimeout is returned by a store whose lock was not granted in time.
var ErrLockTimeout = errors.New("another migration run held the lock for the whole wait")
