// Package natstest describes the nats_events.beta rows a NATS session
// should make, for the tests that run a real client (which write them
// beside the session's recording) and the nats package's tests that
// replay the recording.
package natstest

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// Want is the row one command should make.
type Want struct {
	// Client is whether the client sent the command.
	Client bool   `json:"client"`
	Cmd    string `json:"cmd"`
	// Body is a regular expression the whole body must match (Lit
	// quotes a literal one); the server's INFO and the client's CONNECT
	// carry values that change from run to run.
	Body string `json:"body"`
	Resp string `json:"resp"`
}

// Lit is a Body that matches s only.
func Lit(s string) string { return regexp.QuoteMeta(s) }

// FromServer reports whether a row of command cmd was sent by the
// server, in the sessions of these tests: INFO, MSG, HMSG, -ERR, and
// PONG, since their clients send every PING.
func FromServer(cmd string) bool {
	switch cmd {
	case "INFO", "MSG", "HMSG", "-ERR", "PONG":
		return true
	}
	return false
}

// Check compares rows with wants, in order for each direction (the
// order between the two directions depends on timing).
func Check(t testing.TB, rows []map[string]any, wants []Want) {
	t.Helper()
	var got [2][]map[string]any
	var want [2][]Want
	for _, r := range rows {
		i := 0
		if FromServer(r["cmd"].(string)) {
			i = 1
		}
		got[i] = append(got[i], r)
	}
	for _, w := range wants {
		i := 1
		if w.Client {
			i = 0
		}
		want[i] = append(want[i], w)
	}
	for i, side := range []string{"client", "server"} {
		ok := len(got[i]) == len(want[i])
		for j := 0; ok && j < len(want[i]); j++ {
			ok = match(got[i][j], want[i][j])
		}
		if ok {
			continue
		}
		for j, r := range got[i] {
			t.Logf("%s row %d: %s %s resp=%q", side, j, r["cmd"], r["body"], r["resp"])
		}
		for j, w := range want[i] {
			t.Logf("%s want %d: %s %s resp=%q", side, j, w.Cmd, w.Body, w.Resp)
		}
		t.Errorf("%s: %d rows, want %d, or a row differs (above)", side, len(got[i]), len(want[i]))
	}
}

func match(r map[string]any, w Want) bool {
	body, _ := r["body"].(string)
	re, err := regexp.Compile("^(?:" + w.Body + ")$")
	return err == nil && r["cmd"] == w.Cmd && r["resp"] == w.Resp && re.MatchString(body)
}

// Save writes wants to path (beside a recording).
func Save(t testing.TB, path string, wants []Want) {
	t.Helper()
	b, err := json.MarshalIndent(wants, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Load reads the wants Save wrote.
func Load(t testing.TB, path string) []Want {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wants []Want
	if err := json.Unmarshal(b, &wants); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return wants
}
