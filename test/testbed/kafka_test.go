package testbed

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestKafkaConfig(t *testing.T) {
	cfg := kafkaConfig("/run/k/data", 40001, 40002, map[string]string{
		"num.partitions": "6",                        // overrides the testbed's
		"listeners":      "PLAINTEXT://0.0.0.0:9092", // ignored: the testbed's
	})
	for k, v := range map[string]string{
		"process.roles":                       "broker,controller",
		"node.id":                             "1",
		"controller.quorum.bootstrap.servers": "127.0.0.1:40002",
		"listeners":                           "PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002",
		"advertised.listeners":                "PLAINTEXT://127.0.0.1:40001",
		"controller.listener.names":           "CONTROLLER",
		"log.dirs":                            "/run/k/data",
		"offsets.topic.replication.factor":    "1",
		"group.initial.rebalance.delay.ms":    "0",
		"num.partitions":                      "6",
	} {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	text := renderProperties(map[string]string{"log.dirs": `C:\kafka`, "b": "x", "a key": "y"})
	want := "# Written by flinkscale's testbed (test/testbed).\na\\ key=y\nb=x\nlog.dirs=C:\\\\kafka\n"
	if text != want {
		t.Errorf("renderProperties =\n%s\nwant\n%s", text, want)
	}
}

func TestKafkaClusterID(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, err := newKafkaClusterID()
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.DecodeString(id)
		if len(id) != 22 || err != nil || len(b) != 16 || strings.HasPrefix(id, "-") || seen[id] {
			t.Fatalf("cluster id %q: %d characters, %d bytes, %v", id, len(id), len(b), err)
		}
		seen[id] = true
	}
}
