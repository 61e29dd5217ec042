package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"testing"
	"time"

	"github.com/flinkscale/flinkscale/scaling"
	"github.com/flinkscale/flinkscale/scaling/examples"
	"github.com/flinkscale/flinkscale/scaling/scalingtest"
)

// FuzzReadHistory feeds arbitrary --history files to readHistory (what
// `flinkscale decide` and `recommend` read) and decides with what it
// accepts, on the example snapshots: a history is read or refused with an
// error, never a panic; what is read encodes again; and the decision it
// steers keeps the model's basic contract.
func FuzzReadHistory(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"rescales":[{"decidedAt":"2026-11-02T07:00:00Z","completedAt":"2026-11-02T07:02:00Z","downtime":"45s","outcome":"Succeeded",` +
		`"vertices":[{"id":"a","from":2,"to":4}]}],"recommendations":[{"at":"2026-11-02T07:30:00Z","parallelism":{"a":3}}]}`))
	f.Add([]byte(`{"rescales":[{"decidedAt":"0001-01-01T00:00:00Z","downtime":"-5m","outcome":"","vertices":[{"id":"","from":-1,"to":0}]}]}`))
	f.Add([]byte(`{"recommendations":[{"at":"9999-12-31T23:59:59Z","parallelism":{"x":-7}}]} trailing`))
	f.Add([]byte(`{"unknown":1}`))
	var snaps []scaling.Snapshot
	files, _ := fs.Glob(examples.FS, "*.json")
	for _, name := range files {
		b, err := examples.FS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		s, err := scaling.ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		snaps = append(snaps, s)
	}
	if len(snaps) == 0 {
		f.Fatal("no example snapshots")
	}
	p := scaling.DefaultPolicy()
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		if _, err := json.Marshal(h); err != nil {
			t.Fatalf("history read but does not encode: %v", err)
		}
		for _, s := range snaps {
			now := s.WindowEnd
			if now.IsZero() {
				now = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
			}
			scalingtest.CheckDecision(t, s, p, scaling.Decide(s, p, h, now))
		}
	})
}
