// The example app: one static binary that serves HTTP and migrates its database.
//
//	app [serve]   serve on $APP_PORT: / and /health (200 only while the database answers SELECT 1, 503 otherwise)
//	app migrate   apply the embedded migrations (migrations/NNNN_*.sql) in order, each once, under a MySQL lock
//
// Settings come from the environment (settings.go). Exit codes: 0 done; 1 failed (the message names the failing
// migration and carries MySQL's message); 2 bad usage or settings.
package main

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ha-webapp/app/internal/health"
	"github.com/ha-webapp/app/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	command := "serve"
	if len(args) > 0 {
		command, args = args[0], args[1:]
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	switch command {
	case "serve":
		return serve(args, getenv, logger, stderr)
	case "migrate":
		return migrateCommand(args, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "app: unknown command %q (expected serve or migrate)\n", command)
		return 2
	}
}

// database is a *sql.DB that the health handler can ask.
type database struct{ *sql.DB }

func (d database) Check(ctx context.Context) error {
	var one int
	return d.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

func serve(args []string, getenv func(string) string, logger *slog.Logger, stderr io.Writer) int {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(stderr)
	healthTimeout := flags.Duration("health-timeout", 2*time.Second, "how long /health waits for SELECT 1")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	settings, err := LoadSettings(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "app:", err)
		return 2
	}
	// sql.Open connects lazily: the server starts and answers 503 until the database is reachable.
	db, err := sql.Open("mysql", settings.DSN(false))
	if err != nil {
		fmt.Fprintln(stderr, "app:", err)
		return 2
	}
	defer db.Close()
	db.SetMaxOpenConns(20)
	db.SetConnMaxLifetime(5 * time.Minute) // RDS fails over by DNS: old connections must not live forever

	mux := http.NewServeMux()
	mux.Handle("/health", health.Handler(database{db}, *healthTimeout, logger))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		// One row per visit (migrations/0001_create_visits.sql): the page shows the schema is in place.
		var visits int64
		err := db.QueryRowContext(r.Context(), "INSERT INTO visits (path) VALUES (?)", r.URL.Path).Err()
		if err == nil {
			err = db.QueryRowContext(r.Context(), "SELECT COUNT(*) FROM visits").Scan(&visits)
		}
		if err != nil {
			logger.Error("recording the visit", "error", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ha-webapp example app (%s): visit %d\n", settings.Env, visits)
	})
	server := &http.Server{
		Addr:              fmt.Sprintf(":%d", settings.Port),
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
	}

	// systemd stops the unit with SIGTERM: finish the requests in flight (the load balancer has already drained it).
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	failed := make(chan error, 1)
	go func() { failed <- server.ListenAndServe() }()
	logger.Info("serving", "port", settings.Port, "env", settings.Env)
	select {
	case err := <-failed:
		logger.Error("server stopped", "error", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		logger.Error("shutdown", "error", err)
		return 1
	}
	return 0
}

func migrateCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("migrate", flag.ContinueOnError)
	flags.SetOutput(stderr)
	lockTimeout := flags.Duration("lock-timeout", 10*time.Minute, "how long to wait for another run's lock")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	available, err := migrate.Load(migrationFiles, "migrations")
	if err != nil { // the binary was built with a bad migration: the build's tests should have caught it
		fmt.Fprintln(stderr, "app migrate:", err)
		return 1
	}
	settings, err := LoadSettings(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "app migrate:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := sql.Open("mysql", settings.DSN(true))
	if err != nil {
		fmt.Fprintln(stderr, "app migrate:", err)
		return 2
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "app migrate: cannot connect to %s:%d as %s: %v\n", settings.DBHost, settings.DBPort,
			settings.DBUser, err)
		return 1
	}
	defer conn.Close()

	report, err := migrate.Run(ctx, &migrate.MySQLStore{Conn: conn, LockTimeout: *lockTimeout}, available)
	for _, name := range report.Applied {
		fmt.Fprintln(stdout, "applied", name)
	}
	if len(report.Unknown) > 0 {
		fmt.Fprintf(stdout, "the database has migrations this release does not ship (a newer release ran): %v\n",
			report.Unknown)
	}
	if err != nil {
		var failed *migrate.Failed
		if errors.As(err, &failed) {
			fmt.Fprintln(stderr, "app migrate:", failed.Error())
		} else {
			fmt.Fprintln(stderr, "app migrate:", err)
		}
		return 1
	}
	if report.UpToDate {
		fmt.Fprintf(stdout, "schema is up to date (%d migrations)\n", report.Available)
	}
	return 0
}
