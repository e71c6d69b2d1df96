package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Settings are what the server hands the app in its environment: /etc/app/app.env, written from the stack's user data
// (infra/user_data.py, keys in __main__.py), and DB_PASSWORD from /run/app/secrets.env (packer/files/app_secrets.py).
type Settings struct {
	Port     int
	Env      string
	DBHost   string
	DBPort   int
	DBName   string
	DBUser   string
	Password string
	SSLMode  string
}

// sslModes maps MySQL's --ssl-mode names, which the stack writes as DB_SSL_MODE, to the driver's tls parameter.
// REQUIRED means encrypted but not verified (MySQL's own meaning): RDS's certificate is signed by Alibaba Cloud's CA,
// which is not among the system's roots, so verifying would need that CA baked into the image.
var sslModes = map[string]string{
	"DISABLED":        "false",
	"PREFERRED":       "preferred",
	"REQUIRED":        "skip-verify",
	"VERIFY_CA":       "true",
	"VERIFY_IDENTITY": "true",
}

// LoadSettings reads and checks every setting, listing each problem with its variable's name.
func LoadSettings(getenv func(string) string) (Settings, error) {
	var problems []string
	required := func(name string) string {
		value := getenv(name)
		if value == "" {
			problems = append(problems, name+" is not set")
		}
		return value
	}
	port := func(name, fallback string) int {
		value := getenv(name)
		if value == "" {
			value = fallback
		}
		number, err := strconv.Atoi(value)
		if err != nil || number < 1 || number > 65535 {
			problems = append(problems, fmt.Sprintf("%s=%q is not a port from 1 to 65535", name, value))
		}
		return number
	}
	s := Settings{
		Port:     port("APP_PORT", "8080"),
		Env:      getenv("APP_ENV"),
		DBHost:   required("DB_HOST"),
		DBPort:   port("DB_PORT", "3306"),
		DBName:   required("DB_NAME"),
		DBUser:   required("DB_USER"),
		Password: required("DB_PASSWORD"),
		SSLMode:  getenv("DB_SSL_MODE"),
	}
	if s.SSLMode == "" {
		s.SSLMode = "REQUIRED"
	}
	if _, ok := sslModes[s.SSLMode]; !ok {
		problems = append(problems, fmt.Sprintf("DB_SSL_MODE=%q is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA,"+
			" VERIFY_IDENTITY", s.SSLMode))
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("bad settings: %s", strings.Join(problems, "; "))
	}
	return s, nil
}

// DSN is the driver's connection string; multiStatements only for migrations, whose files hold several statements.
func (s Settings) DSN(multiStatements bool) string {
	config := mysql.NewConfig()
	config.User = s.DBUser
	config.Passwd = s.Password // pragma: allowlist secret (the variable, not a value)
	config.Net = "tcp"
	config.Addr = net.JoinHostPort(s.DBHost, strconv.Itoa(s.DBPort))
	config.DBName = s.DBName
	config.TLSConfig = sslModes[s.SSLMode]
	config.Timeout = 5 * time.Second
	config.ReadTimeout = 30 * time.Second
	config.WriteTimeout = 30 * time.Second
	config.ParseTime = true
	config.MultiStatements = multiStatements
	return config.FormatDSN()
}
