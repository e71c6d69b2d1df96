package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LockName is the MySQL user-level lock every run holds; one name for the whole database server, so a run against
// any schema of this app waits for the others.
const LockName = "ha-webapp-migrate"

// MySQLStore runs on one connection: GET_LOCK belongs to the session that took it, so the lock, the reads and every
// migration must use the same connection, not the pool.
type MySQLStore struct {
	Conn        *sql.Conn
	LockTimeout time.Duration
}

func (s *MySQLStore) Lock(ctx context.Context) error {
	var granted sql.NullInt64
	// GET_LOCK answers 1 (granted), 0 (timed out) or NULL (an error such as a killed wait).
	err := s.Conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", LockName, int(s.LockTimeout.Seconds())).Scan(&granted)
	if err != nil {
		return err
	}
	if !granted.Valid {
		return fmt.Errorf("GET_LOCK('%s') returned NULL", LockName)
	}
	if granted.Int64 != 1 {
		return fmt.Errorf("%w (%s)", ErrLockTimeout, s.LockTimeout)
	}
	return nil
}

func (s *MySQLStore) Unlock(ctx context.Context) error {
	_, err := s.Conn.ExecContext(ctx, "SELECT RELEASE_LOCK(?)", LockName)
	return err
}

func (s *MySQLStore) Applied(ctx context.Context) ([]Applied, error) {
	_, err := s.Conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INT NOT NULL PRIMARY KEY,
		name VARCHAR(255) NOT NULL,
		checksum CHAR(64) NOT NULL,
		applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
	)`)
	if err != nil {
		return nil, err
	}
	rows, err := s.Conn.QueryContext(ctx, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var applied []Applied
	for rows.Next() {
		var row Applied
		if err := rows.Scan(&row.Version, &row.Name, &row.Checksum); err != nil {
			return nil, err
		}
		applied = append(applied, row)
	}
	return applied, rows.Err()
}

// Apply runs the file as one multi-statement call, then records it. MySQL commits DDL implicitly, so a migration
// that fails half-way is not rolled back: keep one schema change per migration, and the error names the file.
func (s *MySQLStore) Apply(ctx context.Context, m Migration) error {
	if _, err := s.Conn.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	_, err := s.Conn.ExecContext(ctx,
		"INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)", m.Version, m.Name, m.Checksum)
	if err != nil {
		return fmt.Errorf("applied, but recording it in schema_migrations failed: %w", err)
	}
	return nil
}
