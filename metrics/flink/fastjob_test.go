package flink

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recordedJobDetails are GET /jobs/:jobid answers of real Flink 1.20 and
// 2.x, recorded by the testbed (test/testbed/testdata/golden).
func recordedJobDetails(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, v := range []string{"flink-1.20", "flink-2"} {
		raw, err := os.ReadFile("../../test/testbed/testdata/golden/" + v + "/rest.json")
		require.NoError(t, err)
		var rec struct {
			JobID string `json:"jobId"`
			Calls []struct {
				Path string          `json:"path"`
				Body json.RawMessage `json:"body"`
			} `json:"calls"`
		}
		require.NoError(t, json.Unmarshal(raw, &rec))
		for _, c := range rec.Calls {
			if c.Path == "/jobs/"+rec.JobID {
				out[v] = c.Body
			}
		}
		require.Contains(t, out, v, "%s records the job details", v)
	}
	return out
}

// stdJobDetails decodes as encoding/json does, the reference.
func stdJobDetails(b []byte) (JobDetails, error) {
	var d JobDetails
	err := json.Unmarshal(b, &d)
	return d, err
}

// The fast decoder reads real Flink's job details exactly as encoding/json
// does, and gives up on anything outside the shape it knows.
func TestJobDetailsDecodeFast(t *testing.T) {
	for name, body := range recordedJobDetails(t) {
		var d JobDetails
		require.True(t, d.decodeFast(body), "%s's answer is decoded without encoding/json", name)
		want, err := stdJobDetails(body)
		require.NoError(t, err)
		require.Equal(t, want, d, name)
		require.NotEmpty(t, d.Vertices, name)
		require.NotEmpty(t, d.Plan.Nodes, name)
		assert.True(t, d.Vertices[0].SlotSharingGroupReported, "%s reports slot-sharing groups", name)
	}

	const vertex = `{"id":"a","name":"Source","parallelism":4,"maxParallelism":128,"status":"RUNNING","metrics":{"read-records":0,"write-records":12,"read-records-complete":true}}`
	for _, tc := range []struct {
		name string
		in   string
		fast bool // decoded without encoding/json
	}{
		{"before 1.20: no slot-sharing group", `{"jid":"j","state":"RUNNING","now":5,"timestamps":{"RUNNING":3,"FAILED":0},"vertices":[` + vertex + `],"plan":{"jid":"j","nodes":[{"id":"a","parallelism":4,"description":"Source: <b>x</b>"}]}}`, true},
		{"1.20: an empty group is reported", `{"jid":"j","state":"RUNNING","vertices":[{"id":"a","slotSharingGroupId":""}]}`, true},
		{"unknown fields of every kind are skipped", `{"jid":"j","state":"RUNNING","x":[1,-2.5e3,"s\"\u00e9",true,false,null,{"y":{}}],"vertices":[],"status-counts":{"RUNNING":2}}`, true},
		{"escaped and non-ASCII strings", `{"jid":"j\u0031","name":"Enrich → Sink","state":"RUNNING","vertices":[]}`, true},
		{"inputs", `{"jid":"j","state":"RUNNING","vertices":[],"plan":{"nodes":[{"id":"b","inputs":[{"num":0,"id":"a","ship_strategy":"HASH","exchange":"pipelined_bounded"}]},{"id":"c","inputs":[]}]}}`, true},
		{"the plan as a string (older Flink)", `{"jid":"j","state":"RUNNING","vertices":[],"plan":"{\"jid\":\"j\"}"}`, false},
		{"null for a field", `{"jid":"j","state":"RUNNING","vertices":[{"id":"a","slotSharingGroupId":null}]}`, false},
		{"a key matching only case-insensitively", `{"JID":"j","state":"RUNNING","vertices":[]}`, false},
		{"a field given twice", `{"jid":"j","jid":"k","state":"RUNNING","vertices":[]}`, false},
		{"a fraction for an integer: encoding/json's error", `{"jid":"j","now":1.5,"vertices":[]}`, false},
		{"an escaped key", `{"j\u0069d":"j","vertices":[]}`, false},
		{"invalid JSON in a skipped value", `{"jid":"j","x":[01],"vertices":[]}`, false},
		{"a bad escape in a skipped value", `{"jid":"j","x":"\q","vertices":[]}`, false},
		{"trailing garbage", `{"jid":"j","vertices":[]} x`, false},
		{"truncated", `{"jid":"j","vertices":[`, false},
		{"not an object", `[]`, false},
	} {
		var d JobDetails
		ok := d.decodeFast([]byte(tc.in))
		assert.Equal(t, tc.fast, ok, tc.name)
		if ok {
			want, err := stdJobDetails([]byte(tc.in))
			require.NoError(t, err, tc.name)
			assert.Equal(t, want, d, tc.name)
		}
	}
}

// FuzzJobDetailsDecode: whenever the fast decoder accepts an answer,
// encoding/json accepts it too and decodes the same job details.
func FuzzJobDetailsDecode(f *testing.F) {
	// Small seeds: the recorded answers (4 kB, TestJobDetailsDecodeFast)
	// make the fuzzer spend its time minimizing.
	f.Add([]byte(`{"jid":"j","state":"RUNNING","timestamps":{"RUNNING":3},"vertices":[{"id":"a","slotSharingGroupId":"g","metrics":{"read-records":1}}],"plan":{"nodes":[{"id":"a","inputs":[{"num":0,"id":"b"}]}]}}`))
	f.Add([]byte(`{"x":[1,{"y":"\u00e9\n"},true,null],"vertices":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d JobDetails
		if !d.decodeFast(b) {
			return
		}
		want, err := stdJobDetails(b)
		if err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(want, d) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, d, want)
		}
	})
}

// Decoding real Flink 1.20's job details, fast and with encoding/json,
// side by side.
//
//	go test ./metrics/flink -run '^$' -bench JobDetailsDecode -benchmem
func BenchmarkJobDetailsDecode(b *testing.B) {
	body := recordedJobDetails(b)["flink-1.20"]
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var d JobDetails
			if !d.decodeFast(body) {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := stdJobDetails(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
