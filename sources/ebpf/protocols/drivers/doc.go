// Package drivers tests the database protocols' parsers against the Go
// drivers that services use (jackc/pgx, go-sql-driver/mysql,
// redis/go-redis) talking to the real servers, under the socket tracer.
// It is a module of its own so that the drivers stay out of pxq's
// requirements; the Makefile's test target runs it.
package drivers
