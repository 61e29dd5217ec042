package testbed

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// bashJavaUtilsOutput is what Flink 1.20.3's BashJavaUtils printed for
// GET_TM_RESOURCE_PARAMS with a 1024m TaskManager, four slots, and a log
// line before it.
const bashJavaUtilsOutput = `INFO  [] - Loading configuration property: taskmanager.numberOfTaskSlots, 4
BASH_JAVA_UTILS_EXEC_RESULT:-Xmx161061270 -Xms161061270 -XX:MaxDirectMemorySize=201326592 -XX:MaxMetaspaceSize=268435456
BASH_JAVA_UTILS_EXEC_RESULT:-D taskmanager.memory.network.min=67108864b -D taskmanager.cpu.cores=4.0 -D taskmanager.memory.task.heap.size=26843542b -D taskmanager.numberOfTaskSlots=4
`

func TestParseBashJavaUtils(t *testing.T) {
	jvm, dyn, err := parseBashJavaUtils([]byte(bashJavaUtilsOutput))
	if err != nil {
		t.Fatal(err)
	}
	wantJVM := []string{"-Xmx161061270", "-Xms161061270", "-XX:MaxDirectMemorySize=201326592", "-XX:MaxMetaspaceSize=268435456"}
	wantDyn := []string{"-D", "taskmanager.memory.network.min=67108864b", "-D", "taskmanager.cpu.cores=4.0",
		"-D", "taskmanager.memory.task.heap.size=26843542b", "-D", "taskmanager.numberOfTaskSlots=4"}
	if !slices.Equal(jvm, wantJVM) || !slices.Equal(dyn, wantDyn) {
		t.Errorf("parseBashJavaUtils = %q, %q;\nwant %q, %q", jvm, dyn, wantJVM, wantDyn)
	}

	for name, out := range map[string]string{
		"no result":        "Exception in thread \"main\" java.lang.NoClassDefFoundError\n",
		"one result":       "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx1 -Xms1\n",
		"three results":    bashJavaUtilsOutput + "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx1\n",
		"empty JVM line":   "BASH_JAVA_UTILS_EXEC_RESULT:\nBASH_JAVA_UTILS_EXEC_RESULT:-D a=b\n",
		"unpaired -D":      "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx1\nBASH_JAVA_UTILS_EXEC_RESULT:-D a=b -D\n",
		"not -D key=value": "BASH_JAVA_UTILS_EXEC_RESULT:-Xmx1\nBASH_JAVA_UTILS_EXEC_RESULT:-D a=b c=d\n",
	} {
		if _, _, err := parseBashJavaUtils([]byte(out)); err == nil {
			t.Errorf("%s: parseBashJavaUtils accepted %q", name, out)
		}
	}
	// Dynamic properties may be empty.
	if _, dyn, err := parseBashJavaUtils([]byte("BASH_JAVA_UTILS_EXEC_RESULT:-Xmx1\nBASH_JAVA_UTILS_EXEC_RESULT:\n")); err != nil || len(dyn) != 0 {
		t.Errorf("no dynamic properties: %q, %v", dyn, err)
	}
}

func TestFlinkConfig(t *testing.T) {
	o, err := FlinkOptions{
		Version: Flink2,
		Slots:   3,
		Config: map[string]string{
			"jobmanager.scheduler":       "default", // overrides the testbed's
			"state.backend.type":         "rocksdb", // added
			"rest.port":                  "8081",    // ignored: the testbed's
			"metrics.reporter.prom.port": "9249",    // ignored: set per process
		},
	}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg := flinkConfig(o, "/run/x", 40001, 40002)
	want := map[string]string{
		"jobmanager.rpc.address":                "127.0.0.1",
		"jobmanager.bind-host":                  "127.0.0.1",
		"taskmanager.bind-host":                 "127.0.0.1",
		"taskmanager.host":                      "127.0.0.1",
		"rest.address":                          "127.0.0.1",
		"rest.bind-address":                     "127.0.0.1",
		"rest.port":                             "40001",
		"jobmanager.rpc.port":                   "40002",
		"blob.server.port":                      "0",
		"taskmanager.numberOfTaskSlots":         "3",
		"jobmanager.memory.process.size":        DefaultJobManagerMemory,
		"taskmanager.memory.process.size":       DefaultTaskManagerMemory,
		"jobmanager.scheduler":                  "default",
		"state.backend.type":                    "rocksdb",
		"metrics.reporter.prom.factory.class":   promReporter,
		"state.checkpoints.dir":                 "file:///run/x/checkpoints",
		"execution.checkpointing.dir":           "file:///run/x/checkpoints",
		"state.savepoints.dir":                  "file:///run/x/savepoints",
		"execution.checkpointing.savepoint-dir": "file:///run/x/savepoints",
		"io.tmp.dirs":                           "/run/x/tmp",
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg[k], v)
		}
	}
	if _, ok := cfg["metrics.reporter.prom.port"]; ok {
		t.Errorf("config.yaml sets metrics.reporter.prom.port; it is per process")
	}

	// The default scheduler is the adaptive one.
	o, _ = FlinkOptions{}.withDefaults()
	if got := flinkConfig(o, "/d", 1, 2)["jobmanager.scheduler"]; got != "adaptive" {
		t.Errorf("default jobmanager.scheduler = %q", got)
	}
}

func TestFlinkOptionsDefaults(t *testing.T) {
	o, err := FlinkOptions{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Version != Flink120 || o.Scheduler != "adaptive" || o.TaskManagers != 1 || o.Slots != DefaultSlots ||
		o.StartTimeout != DefaultStartTimeout {
		t.Errorf("defaults: %+v", o)
	}
	for _, bad := range []FlinkOptions{
		{Version: "1.19"},
		{Scheduler: "reactive"},
		{TaskManagers: -1},
		{Slots: -2},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestRenderYAMLReadsBack(t *testing.T) {
	cfg := map[string]string{
		"rest.address":                    "127.0.0.1",
		"state.checkpoints.dir":           "file:///tmp/a b/checkpoints",
		"io.tmp.dirs":                     "/tmp/x-1/tmp",
		"taskmanager.memory.process.size": "1024m",
		"empty":                           "",
		"yes":                             "yes",
		"colon":                           "a: b",
		"trailing colon":                  "a:",
		"hash":                            "#not a comment",
		"dash":                            "-D x=y",
		"quote":                           `say "hi"\n`,
		"newline":                         "two\nlines",
		"pipeline.jobvertex-parallelism-overrides": "abc:2,def:4",
	}
	text := renderYAML(cfg)
	var back map[string]any
	if err := yaml.Unmarshal([]byte(text), &back); err != nil {
		t.Fatalf("renderYAML wrote invalid YAML: %v\n%s", err, text)
	}
	for k, v := range cfg {
		if got := fmt.Sprint(back[k]); got != v {
			t.Errorf("%q reads back as %q, want %q\n%s", k, got, v, text)
		}
	}
	for _, plain := range []string{"rest.address: 127.0.0.1\n", "taskmanager.memory.process.size: 1024m\n", "pipeline.jobvertex-parallelism-overrides: abc:2,def:4\n"} {
		if !strings.Contains(text, plain) {
			t.Errorf("renderYAML did not write %q plainly:\n%s", plain, text)
		}
	}
}

func TestJavaOptsFrom(t *testing.T) {
	cfg := map[string]string{"env.java.opts.all": " -Da=1  -Db=2 ", "env.java.opts.taskmanager": "-XX:+UseSerialGC"}
	got := javaOptsFrom(cfg, "env.java.opts", "env.java.opts.all", "env.java.opts.taskmanager")
	if want := []string{"-Da=1", "-Db=2", "-XX:+UseSerialGC"}; !slices.Equal(got, want) {
		t.Errorf("javaOptsFrom = %q, want %q", got, want)
	}
}

func TestFlinkProfiles(t *testing.T) {
	if Flink120.Profile() != "flink-1.20" || Flink2.Profile() != "flink-2" {
		t.Errorf("profiles %q, %q", Flink120.Profile(), Flink2.Profile())
	}
	if err := Flink("3").Validate(); err == nil {
		t.Error("Flink 3 validated")
	}
	if got, want := WorkloadJar("/r", Flink2), "/r/bin/testbed/target-2/flinkscale-testbed-0.1.0.jar"; got != want {
		t.Errorf("WorkloadJar = %q, want %q", got, want)
	}
}
