package config

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Log is the logging settings every binary has.
type Log struct {
	Level  slog.Level
	Format string // "json" or "text"
}

// Logging declares --log-level and --log-format; the format defaults to
// defFormat ("json" in a cluster, where logs are collected, "text" for a
// person at a terminal).
func (s *Set) Logging(l *Log, defFormat string) {
	l.Format = defFormat
	s.Func("log-level", "info", "log level: debug, info, warn or error", func(v string) error {
		if err := l.Level.UnmarshalText([]byte(v)); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	})
	s.Func("log-format", defFormat, "log format: json or text", func(v string) error {
		if v != "json" && v != "text" {
			return errors.New("must be json or text")
		}
		l.Format = v
		return nil
	})
}

// Logger returns a logger writing to w as the settings say.
func (l Log) Logger(w io.Writer) *slog.Logger {
	o := &slog.HandlerOptions{Level: l.Level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, o))
	}
	return slog.New(slog.NewJSONHandler(w, o))
}

// NodeID declares --node-id, the name of this process on the bus and in the
// session registry. It defaults to the host name (a pod's name in
// Kubernetes), with the characters a NATS subject token cannot hold
// replaced by '-'.
func (s *Set) NodeID(p *string) {
	s.String(p, "node-id", DefaultNodeID(), "name of this node on the bus (letters, digits, '-', '_'); default: the host name").
		Required().Check(func() error { return CheckNodeID(*p) })
}

// DefaultNodeID is the host name made safe for a node id, or "node" when
// the host name is unknown.
func DefaultNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	return strings.Map(func(r rune) rune {
		if isNodeRune(r) {
			return r
		}
		return '-'
	}, h)
}

// CheckNodeID reports whether id can name a node: a NATS subject token of
// letters, digits, '-' and '_', at most 64 bytes.
func CheckNodeID(id string) error {
	if id == "" || len(id) > 64 {
		return errors.New("must be 1 to 64 characters")
	}
	for _, r := range id {
		if !isNodeRune(r) {
			return errors.New("may only hold letters, digits, '-' and '_'")
		}
	}
	return nil
}

func isNodeRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}
