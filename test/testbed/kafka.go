package testbed

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultKafkaHeap is the broker's -Xmx.
const DefaultKafkaHeap = "512m"

// KafkaOptions configure StartKafka. Every zero value is a working default.
type KafkaOptions struct {
	// Dir is the broker's work directory: server.properties, data/ (its
	// log.dirs), log/kafka.log and log/kafka.out. Empty: a new temporary
	// directory, removed by a successful Stop.
	Dir string
	// Heap is the JVM's maximum heap (-Xmx); default DefaultKafkaHeap.
	Heap string
	// Config is more server.properties entries; they override the
	// testbed's (see kafkaConfig), except the listeners and ports.
	Config map[string]string
	// RepoRoot is the repository, for Resolve; default RepoRoot().
	RepoRoot string
	// Classpath is Kafka's classpath; default Resolve(RepoRoot, ProfileKafka).
	Classpath string
	// Java is the java binary; default JavaPath().
	Java string
	// StartTimeout bounds StartKafka; default DefaultStartTimeout.
	StartTimeout time.Duration
}

// Kafka is a running single-node Kafka broker (KRaft, broker and controller
// in one JVM) on 127.0.0.1.
type Kafka struct {
	proc      *proc
	bootstrap string
	dir       string
	ownDir    bool

	mu      sync.Mutex
	stopped bool
}

// StartKafka formats a new KRaft log directory (Dir/data, emptied first),
// starts a broker on it and returns once the broker answers a metadata
// request. ctx bounds the start only. On error nothing is left running.
func StartKafka(ctx context.Context, opts KafkaOptions) (_ *Kafka, err error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Heap == "" {
		opts.Heap = DefaultKafkaHeap
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	java := opts.Java
	if java == "" {
		if java, err = JavaPath(); err != nil {
			return nil, err
		}
	}
	cp := opts.Classpath
	if cp == "" {
		root := opts.RepoRoot
		if root == "" {
			if root, err = RepoRoot(); err != nil {
				return nil, err
			}
		}
		if cp, err = Resolve(ctx, root, ProfileKafka); err != nil {
			return nil, err
		}
	}
	k := &Kafka{dir: opts.Dir}
	if k.dir == "" {
		if k.dir, err = os.MkdirTemp("", "flinkscale-testbed-kafka-"); err != nil {
			return nil, err
		}
		k.ownDir = true
	}
	defer func() {
		if err != nil {
			if k.proc != nil {
				_ = k.proc.stop(StopGrace)
			}
			if k.ownDir {
				err = fmt.Errorf("%w\n(work directory kept: %s)", err, k.dir)
			}
		}
	}()
	if k.dir, err = filepath.Abs(k.dir); err != nil {
		return nil, err
	}
	logDir := filepath.Join(k.dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	controllerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	k.bootstrap = hostPort(port)
	// A new broker every time, even in a reused work directory.
	dataDir := filepath.Join(k.dir, "data")
	if err := os.RemoveAll(dataDir); err != nil {
		return nil, err
	}
	props := filepath.Join(k.dir, "server.properties")
	log4j := filepath.Join(k.dir, "log4j2.properties")
	cfg := kafkaConfig(dataDir, port, controllerPort, opts.Config)
	if err := os.WriteFile(props, []byte(renderProperties(cfg)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(log4j, []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}

	// Format the log directory as a one-voter quorum (a second and a bit).
	clusterID, err := newKafkaClusterID()
	if err != nil {
		return nil, err
	}
	formatLog := filepath.Join(logDir, "storage-tool.log")
	format := exec.CommandContext(ctx, java, append(log4jArgs(log4j, formatLog),
		"-cp", cp, "kafka.tools.StorageTool", "format", "--standalone", "-t", clusterID, "-c", props)...)
	format.Dir = k.dir
	format.SysProcAttr = sysProcAttr()
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("formatting Kafka's log directory (kafka.tools.StorageTool format): %w; last lines of its output:\n%s%s",
			err, lastLines(out, tailLines), fileTail(formatLog))
	}

	p := Process{Name: "kafka", Log: filepath.Join(logDir, "kafka.log"), Output: filepath.Join(logDir, "kafka.out")}
	argv := []string{java, "-Xmx" + opts.Heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dkafka.logs.dir=" + logDir}
	argv = append(argv, log4jArgs(log4j, p.Log)...)
	argv = append(argv, "-cp", cp, "kafka.Kafka", props)
	if k.proc, err = startProc(p, k.dir, argv); err != nil {
		return nil, err
	}
	if err := k.waitReady(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// waitReady polls the broker with a metadata request until it lists itself.
func (k *Kafka) waitReady(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.bootstrap), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start := time.Now()
	var lastErr error
	for {
		if k.proc.exited() {
			return k.proc.exitError()
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		brokers, err := adm.ListBrokers(rctx)
		cancel()
		if err == nil && len(brokers) > 0 {
			return nil
		}
		if err == nil {
			err = errors.New("no brokers in the metadata")
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Kafka at %s: %v after %s; last error: %v%s",
				k.bootstrap, ctx.Err(), time.Since(start).Round(time.Millisecond), lastErr, k.proc.tails())
		case <-time.After(pollEvery):
		}
	}
}

// kafkaConfig is the server.properties of a one-node KRaft cluster on
// 127.0.0.1 (its controller quorum bootstrapped, as `format --standalone`
// requires), with replication factors of 1 for the internal topics and no
// delay before a consumer group's first rebalance; extra on top.
func kafkaConfig(dataDir string, port, controllerPort int, extra map[string]string) map[string]string {
	listener, controller := hostPort(port), hostPort(controllerPort)
	cfg := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          "1",
		"controller.quorum.bootstrap.servers":              controller,
		"listeners":                                        "PLAINTEXT://" + listener + ",CONTROLLER://" + controller,
		"advertised.listeners":                             "PLAINTEXT://" + listener,
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                                         dataDir,
		"num.partitions":                                   "1",
		"offsets.topic.replication.factor":                 "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
	}
	for k, v := range extra {
		switch k {
		case "listeners", "advertised.listeners", "controller.quorum.bootstrap.servers", "controller.quorum.voters", "process.roles", "node.id":
			continue // the testbed's to choose
		}
		cfg[k] = v
	}
	return cfg
}

// renderProperties writes cfg as a Java properties file, keys sorted.
func renderProperties(cfg map[string]string) string {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	var b strings.Builder
	b.WriteString("# Written by flinkscale's testbed (test/testbed).\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", strings.NewReplacer(`=`, `\=`, `:`, `\:`, " ", `\ `).Replace(esc.Replace(k)), esc.Replace(cfg[k]))
	}
	return b.String()
}

// newKafkaClusterID is a random cluster id as Kafka's Uuid.randomUuid
// writes it: 16 bytes, unpadded URL-safe base64 (22 characters), never
// starting with "-" (it would read as a command-line option).
func newKafkaClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id, nil
		}
	}
}

// Bootstrap is the broker's address, "127.0.0.1:<port>".
func (k *Kafka) Bootstrap() string { return k.bootstrap }

// Dir is the broker's work directory.
func (k *Kafka) Dir() string { return k.dir }

// Process is the broker's JVM.
func (k *Kafka) Process() Process { return k.proc.Process }

// Stop stops the broker (SIGTERM: a controlled shutdown; SIGKILL after
// StopGrace) and removes a temporary work directory. Stop is idempotent.
func (k *Kafka) Stop() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return nil
	}
	k.stopped = true
	err := k.proc.stop(StopGrace)
	if err == nil && k.ownDir {
		err = os.RemoveAll(k.dir)
	}
	return err
}
