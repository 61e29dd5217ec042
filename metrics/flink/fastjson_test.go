package flink

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stdAggregated decodes as encoding/json does, the reference.
func stdAggregated(b []byte) ([]AggregatedMetric, error) {
	var out []AggregatedMetric
	err := json.Unmarshal(b, &out)
	return out, err
}

func sameFloat(a, b *Float) bool {
	switch {
	case a == nil || b == nil:
		return a == b
	case math.IsNaN(float64(*a)):
		return math.IsNaN(float64(*b))
	}
	return *a == *b
}

func sameAggregated(a, b []AggregatedMetric) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || !sameFloat(x.Min, y.Min) || !sameFloat(x.Max, y.Max) || !sameFloat(x.Avg, y.Avg) ||
			!sameFloat(x.Sum, y.Sum) || !sameFloat(x.Skew, y.Skew) {
			return false
		}
	}
	return true
}

// The fast decoder reads Flink's answers as encoding/json does, and gives
// up (encoding/json then decides) on anything outside the common shape.
func TestAggregatedDecodeFast(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		fast bool // decoded without encoding/json
	}{
		{"Flink 1.20's answer", `[{"id":"busyTimeMsPerSecond","min":0.0,"max":734.0,"avg":512.25,"sum":2049.0},{"id":"numRecordsIn","min":10,"max":20,"avg":15,"sum":60}]`, true},
		{"whitespace and skew", " [ {\"id\" : \"a\" , \"skew\" : 12.5e-1 } ]\n", true},
		{"strings, NaN and infinities", `[{"id":"a","min":"NaN","max":"Infinity","avg":"-Infinity","sum":"1.2345678E7"}]`, true},
		{"null leaves the value absent", `[{"id":"a","min":null,"max":1}]`, true},
		{"empty list", `[]`, true},
		{"an empty object", `[{}]`, true},
		{"duplicate key: the last wins", `[{"id":"a","max":1,"max":2}]`, true},
		{"overflow is infinity, as Java", `[{"id":"a","max":1e400}]`, true},
		{"unknown field", `[{"id":"a","p99":3}]`, false},
		{"escaped id", `[{"id":"a\u0062","max":1}]`, false},
		{"non-ASCII id", `[{"id":"é","max":1}]`, false},
		{"boolean value: encoding/json's error", `[{"id":"a","max":true}]`, false},
		{"leading zero: invalid JSON", `[{"id":"a","max":01}]`, false},
		{"trailing garbage", `[{"id":"a","max":1}] x`, false},
		{"trailing comma", `[{"id":"a","max":1},]`, false},
		{"not a list", `{"id":"a"}`, false},
		{"truncated", `[{"id":"a","max":1`, false},
	} {
		var l aggregatedList
		ok := l.decodeFast([]byte(tc.in))
		assert.Equal(t, tc.fast, ok, tc.name)
		if ok {
			want, err := stdAggregated([]byte(tc.in))
			require.NoError(t, err, tc.name)
			assert.True(t, sameAggregated(want, l), "%s: %+v, encoding/json: %+v", tc.name, l, want)
		}
	}
}

// FuzzAggregatedDecode: whenever the fast decoder accepts an answer,
// encoding/json accepts it too and decodes the same metrics.
func FuzzAggregatedDecode(f *testing.F) {
	for _, s := range []string{
		`[{"id":"busyTimeMsPerSecond","min":0.0,"max":734.0,"avg":512.25,"sum":2049.0}]`,
		`[{"id":"a","min":"NaN","max":"Infinity","avg":null,"skew":-0.5E+3}]`, `[]`, `[{}]`, ` [ ] `,
		`[{"id":"a","max":-0}]`, `[{"id":"a","max":"  7 "}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l aggregatedList
		if !l.decodeFast(b) {
			return
		}
		want, err := stdAggregated(b)
		if err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json: %v", b, err)
		}
		if !sameAggregated(want, l) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, l, want)
		}
	})
}

// Decoding one vertex's answer (7 metrics, as a source's), fast and with
// encoding/json, side by side.
//
//	go test ./metrics/flink -run '^$' -bench AggregatedDecode -benchmem
func BenchmarkAggregatedDecode(b *testing.B) {
	var items []string
	for _, id := range []string{"busyTimeMsPerSecond", "backPressuredTimeMsPerSecond", "numRecordsIn", "numRecordsOut",
		"numRecordsInPerSecond", "numRecordsOutPerSecond", "Source__orders.KafkaSourceReader.pendingRecords"} {
		items = append(items, `{"id":"`+id+`","min":12.0,"max":734.5,"avg":512.25,"sum":2049.0}`)
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var l aggregatedList
			if !l.decodeFast(body) {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := stdAggregated(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// What the metric-list decoder accepts, it decodes as encoding/json does.
func FuzzMetricListDecode(f *testing.F) {
	for _, s := range []string{
		`[{"id":"0.Source__orders.KafkaSourceReader.topic.orders.partition.3.currentOffset","value":"1234"}]`,
		`[{"id":"a"},{"id":"b","value":null},{"id":"c","value":"NaN"}]`, `[]`, `[{}]`, ` [ ] `,
		`[{"id":"a\u00e9","value":"x\"y"}]`, `[{"id":"a","value":7}]`, `[{"id":"a","id":"b","value":"1","value":null}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var l metricList
		if !l.decodeFast(b) {
			return
		}
		var want metricList
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast decoder accepted %q, encoding/json: %v", b, err)
		}
		require.Equal(t, want, l, "%q", b)
	})
}

// TestMetricListDecode: the shapes Flink answers, and the ones left to
// encoding/json.
func TestMetricListDecode(t *testing.T) {
	v := func(s string) *string { return &s }
	for _, tc := range []struct {
		in   string
		ok   bool
		want metricList
	}{
		{`[{"id":"0.currentOffset","value":"1234"},{"id":"1.currentOffset","value":"-1"}]`, true,
			metricList{{ID: "0.currentOffset", Value: v("1234")}, {ID: "1.currentOffset", Value: v("-1")}}},
		{`[ {"id" : "numRecordsIn"} ]`, true, metricList{{ID: "numRecordsIn"}}},
		{`[{"id":"a\u00e9","value":null}]`, true, metricList{{ID: "aé"}}},
		{`[]`, true, metricList{}},
		{`[{"id":"a","value":7}]`, false, nil},     // a number: encoding/json's error
		{`[{"id":"a","other":"x"}]`, false, nil},   // another key: encoding/json ignores it
		{`[{"id":"a","value":"1"}] x`, false, nil}, // trailing bytes
		{`{"id":"a"}`, false, nil},                 // not an array
	} {
		var l metricList
		ok := l.decodeFast([]byte(tc.in))
		assert.Equal(t, tc.ok, ok, tc.in)
		if ok {
			assert.Equal(t, tc.want, l, tc.in)
		}
	}
}

// Decoding a source's partition gauges (40: 10 partitions' current and
// committed offsets, on two subtasks each), fast and with encoding/json.
//
//	go test ./metrics/flink -run '^$' -bench MetricListDecode -benchmem
func BenchmarkMetricListDecode(b *testing.B) {
	var items []string
	for i := range 40 {
		items = append(items, fmt.Sprintf(`{"id":"%d.Source__orders.KafkaSourceReader.topic.orders.partition.%d.currentOffset","value":"%d"}`, i%2, i/2, 1000000+i))
	}
	body := []byte("[" + strings.Join(items, ",") + "]")
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var l metricList
			if !l.decodeFast(body) {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var l metricList
			if err := json.Unmarshal(body, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
