package migrate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func files(names map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range names {
		fsys["migrations/"+name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func TestLoadOrdersByVersionAndChecksumsTheBytes(t *testing.T) {
	got, err := Load(files(map[string]string{
		"0010_add_index.sql":     "CREATE INDEX i ON t (c);",
		"0002_create_table.sql":  "CREATE TABLE t (c INT);",
		"0001_create_schema.sql": "-- first\nCREATE TABLE s (id INT);",
	}), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "0001_create_schema.sql,0002_create_table.sql,0010_add_index.sql" {
		t.Fatalf("order: %v", names)
	}
	// sha256("CREATE TABLE t (c INT);"), computed with sha256sum.
	if got[1].Checksum != "eac0b195e156033edc9e18c2f26a1b08a833332b3088310ee4d60a192dc3de26" { // pragma: allowlist secret (a checksum)
		t.Fatalf("checksum %q", got[1].Checksum)
	}
	if got[0].Checksum == got[1].Checksum || got[1].Version != 2 || got[2].Version != 10 {
		t.Fatalf("versions or checksums wrong: %+v", got)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	cases := map[string]struct {
		files map[string]string
		want  string
	}{
		"no version":        {map[string]string{"create.sql": "SELECT 1;"}, "not named NNNN_name.sql"},
		"three digits":      {map[string]string{"001_create.sql": "SELECT 1;"}, "not named NNNN_name.sql"},
		"upper case":        {map[string]string{"0001_Create.sql": "SELECT 1;"}, "not named NNNN_name.sql"},
		"not sql":           {map[string]string{"0001_create.txt": "SELECT 1;"}, "not named NNNN_name.sql"},
		"version zero":      {map[string]string{"0000_create.sql": "SELECT 1;"}, "start at 0001"},
		"duplicate version": {map[string]string{"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"}, "same version 0001"},
		"only comments":     {map[string]string{"0001_a.sql": "-- TODO\n\n"}, "holds no SQL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(files(c.files), "migrations")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func migrations(t *testing.T, bodies ...string) []Migration {
	t.Helper()
	names := map[string]string{}
	for i, body := range bodies {
		names[[]string{"0001_a.sql", "0002_b.sql", "0003_c.sql"}[i]] = body
	}
	loaded, err := Load(files(names), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

func TestPending(t *testing.T) {
	all := migrations(t, "CREATE TABLE a (i INT);", "CREATE TABLE b (i INT);", "CREATE TABLE c (i INT);")
	row := func(m Migration) Applied { return Applied{m.Version, m.Name, m.Checksum} }

	pending, err := Pending(all, []Applied{row(all[0])})
	if err != nil || len(pending) != 2 || pending[0].Name != "0002_b.sql" {
		t.Fatalf("after 0001: %v %v", pending, err)
	}
	pending, err = Pending(all, []Applied{row(all[0]), row(all[1]), row(all[2])})
	if err != nil || len(pending) != 0 {
		t.Fatalf("all applied: %v %v", pending, err)
	}
	// A rollback: the database knows 0004, which this binary does not ship.
	pending, err = Pending(all, []Applied{row(all[0]), row(all[1]), row(all[2]), {4, "0004_d.sql", "x"}})
	if err != nil || len(pending) != 0 {
		t.Fatalf("newer in database: %v %v", pending, err)
	}

	changed := row(all[0])
	changed.Checksum = strings.Repeat("0", 64)
	if _, err := Pending(all, []Applied{changed}); err == nil || !strings.Contains(err.Error(), "0001_a.sql was changed after it was applied") {
		t.Fatalf("changed migration: %v", err)
	}
	if _, err := Pending(all, []Applied{row(all[0]), row(all[2])}); err == nil ||
		!strings.Contains(err.Error(), "0002_b.sql is pending but 0003 is already applied") {
		t.Fatalf("out of order: %v", err)
	}
}

// fakeStore is a database in memory whose lock behaves like GET_LOCK: one holder, the others wait.
type fakeStore struct {
	mu       *sync.Mutex // the server's lock, shared by every session
	state    *fakeDB
	failOn   string
	log      *[]string
	holding  bool
	lockWait time.Duration
}

type fakeDB struct {
	sync.Mutex
	rows []Applied
}

func (s *fakeStore) Lock(ctx context.Context) error {
	locked := make(chan struct{})
	go func() { s.mu.Lock(); close(locked) }()
	select {
	case <-locked:
		s.holding = true
		return nil
	case <-time.After(s.lockWait):
		return ErrLockTimeout
	}
}

func (s *fakeStore) Unlock(context.Context) error {
	if s.holding {
		s.holding = false
		s.mu.Unlock()
	}
	return nil
}

func (s *fakeStore) Applied(context.Context) ([]Applied, error) {
	if !s.holding {
		return nil, errors.New("read without the lock")
	}
	s.state.Lock()
	defer s.state.Unlock()
	return append([]Applied(nil), s.state.rows...), nil
}

func (s *fakeStore) Apply(_ context.Context, m Migration) error {
	if !s.holding {
		return errors.New("applied without the lock")
	}
	if m.Name == s.failOn {
		return errors.New("Error 1050 (42S01): Table 'b' already exists")
	}
	time.Sleep(5 * time.Millisecond) // long enough for a second run to be waiting
	s.state.Lock()
	defer s.state.Unlock()
	s.state.rows = append(s.state.rows, Applied{m.Version, m.Name, m.Checksum})
	*s.log = append(*s.log, m.Name)
	return nil
}

func newFake() (*sync.Mutex, *fakeDB, *[]string) { return &sync.Mutex{}, &fakeDB{}, &[]string{} }

func TestRunAppliesInOrderThenDoesNothing(t *testing.T) {
	all := migrations(t, "CREATE TABLE a (i INT);", "CREATE TABLE b (i INT);")
	lock, db, log := newFake()
	store := &fakeStore{mu: lock, state: db, log: log, lockWait: time.Second}
	report, err := Run(context.Background(), store, all)
	if err != nil || strings.Join(report.Applied, ",") != "0001_a.sql,0002_b.sql" {
		t.Fatalf("first run: %+v %v", report, err)
	}
	report, err = Run(context.Background(), store, all)
	if err != nil || !report.UpToDate || len(*log) != 2 {
		t.Fatalf("second run: %+v %v (log %v)", report, err, *log)
	}
	if store.holding {
		t.Fatal("the lock is still held after the run")
	}
}

func TestTwoRunsAtOnceMigrateOnce(t *testing.T) {
	all := migrations(t, "CREATE TABLE a (i INT);", "CREATE TABLE b (i INT);", "CREATE TABLE c (i INT);")
	lock, db, log := newFake()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Run(context.Background(), &fakeStore{mu: lock, state: db, log: log, lockWait: 5 * time.Second}, all)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if strings.Join(*log, ",") != "0001_a.sql,0002_b.sql,0003_c.sql" {
		t.Fatalf("applied %v: each migration must run exactly once", *log)
	}
}

func TestRunNamesTheFailingMigrationWithTheDatabasesMessage(t *testing.T) {
	all := migrations(t, "CREATE TABLE a (i INT);", "CREATE TABLE b (i INT);", "CREATE TABLE c (i INT);")
	lock, db, log := newFake()
	store := &fakeStore{mu: lock, state: db, log: log, failOn: "0002_b.sql", lockWait: time.Second}
	report, err := Run(context.Background(), store, all)
	var failed *Failed
	if !errors.As(err, &failed) || failed.Name != "0002_b.sql" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "migration 0002_b.sql failed: Error 1050 (42S01): Table 'b' already exists") {
		t.Fatalf("message: %v", err)
	}
	if strings.Join(report.Applied, ",") != "0001_a.sql" || store.holding {
		t.Fatalf("stopped at the failure and released the lock: %+v holding=%v", report, store.holding)
	}
}

func TestRunGivesUpWhenTheLockIsNotGranted(t *testing.T) {
	all := migrations(t, "CREATE TABLE a (i INT);")
	lock, db, log := newFake()
	lock.Lock() // another run holds it
	_, err := Run(context.Background(), &fakeStore{mu: lock, state: db, log: log, lockWait: 20 * time.Millisecond}, all)
	if !errors.Is(err, ErrLockTimeout) || len(*log) != 0 {
		t.Fatalf("got %v, applied %v", err, *log)
	}
}
