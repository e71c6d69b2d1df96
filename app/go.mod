// The example app (docs/app.md): one static binary, built by the pipeline's app:build job and baked into the image.
// The MySQL driver is its one dependency, pinned here (go.sum holds its checksum).
module github.com/ha-webapp/app

go 1.26

require github.com/go-sql-driver/mysql v1.10.1

require filippo.io/edwards25519 v1.2.0 // indirect
