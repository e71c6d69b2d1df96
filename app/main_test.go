package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/ha-webapp/app/internal/migrate"
)

// What the stacks write into /etc/app/app.env (__main__.py's runtime_settings) and app_secrets.py into secrets.env.
func serverEnv(overrides map[string]string) func(string) string {
	env := map[string]string{
		"APP_ENV":               "dev",
		"APP_PORT":              "8080",
		"DB_HOST":               "rm-bp1example.mysql.rds.aliyuncs.com",
		"DB_PORT":               "3306",
		"DB_NAME":               "appdb",
		"DB_USER":               "app",
		"DB_PASSWORD":           `p@ss:w/o"rd`, // pragma: allowlist secret (a test value)
		"DB_PASSWORD_PARAMETER": "ha-webapp-dev-db-password",
		"DB_SSL_MODE":           "REQUIRED",
	}
	for name, value := range overrides {
		env[name] = value
	}
	return func(name string) string { return env[name] }
}

func TestSettingsFromTheServersEnvironment(t *testing.T) {
	settings, err := LoadSettings(serverEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := mysql.ParseDSN(settings.DSN(false))
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Addr != "rm-bp1example.mysql.rds.aliyuncs.com:3306" || parsed.DBName != "appdb" || parsed.User != "app" {
		t.Fatalf("dsn %+v", parsed)
	}
	// A password with the DSN's own separators survives the round trip.
	if parsed.Passwd != `p@ss:w/o"rd` || parsed.TLSConfig != "skip-verify" || parsed.MultiStatements {
		t.Fatalf("dsn %+v", parsed)
	}
	withStatements, _ := mysql.ParseDSN(settings.DSN(true))
	if !withStatements.MultiStatements {
		t.Fatal("the migration connection needs multiStatements")
	}
}

func TestBadSettingsNameEachVariable(t *testing.T) {
	_, err := LoadSettings(serverEnv(map[string]string{
		"DB_HOST": "", "DB_PASSWORD": "", "APP_PORT": "80a", "DB_SSL_MODE": "SOMETIMES",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"DB_HOST is not set", "DB_PASSWORD is not set", `APP_PORT="80a"`, `DB_SSL_MODE="SOMETIMES"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestTheShippedMigrationsLoad(t *testing.T) {
	loaded, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) == 0 || loaded[0].Name != "0001_create_visits.sql" {
		t.Fatalf("got %+v", loaded)
	}
}

func TestUsageAndSettingsErrorsExit2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"migrat"}, serverEnv(nil), &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `unknown command "migrat"`) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"migrate"}, serverEnv(map[string]string{"DB_NAME": ""}), &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "DB_NAME is not set") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
