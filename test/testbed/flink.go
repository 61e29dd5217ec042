package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flinkscale/flinkscale/metrics/flinkprom"
)

// Defaults of FlinkOptions and KafkaOptions.
const (
	DefaultScheduler         = "adaptive"
	DefaultSlots             = 2
	DefaultJobManagerMemory  = "768m"
	DefaultTaskManagerMemory = "1024m"
	// DefaultStartTimeout bounds a start (and WaitReady without a
	// deadline). A healthy Flink cluster is up in about 10 s on two cores,
	// Kafka in about 5 s; the rest is for a machine busy with other tests.
	DefaultStartTimeout = 2 * time.Minute
)

// Flink's entry points, as its start scripts run them.
const (
	mainBashJavaUtils = "org.apache.flink.runtime.util.bash.BashJavaUtils"
	mainJobManager    = "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint"
	mainTaskManager   = "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"
	promReporter      = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
	// bashJavaUtilsPrefix marks BashJavaUtils' result lines.
	bashJavaUtilsPrefix = "BASH_JAVA_UTILS_EXEC_RESULT:"
)

// pollEvery is the pace of the readiness checks.
const pollEvery = 250 * time.Millisecond

// FlinkOptions configure StartFlink. Every zero value is a working default.
type FlinkOptions struct {
	// Version is the Flink line; default Flink120.
	Version Flink
	// Scheduler is jobmanager.scheduler: "adaptive" (the default: jobs
	// rescale in place when TaskManagers come and go) or "default".
	Scheduler string
	// TaskManagers is how many TaskManagers StartFlink starts; 0 means 1.
	TaskManagers int
	// Slots is taskmanager.numberOfTaskSlots; 0 means DefaultSlots.
	Slots int
	// JobManagerMemory and TaskManagerMemory are the processes' total
	// memory (jobmanager.memory.process.size, taskmanager.memory.process.size),
	// split by Flink's own rules; defaults DefaultJobManagerMemory and
	// DefaultTaskManagerMemory.
	JobManagerMemory, TaskManagerMemory string
	// Config is more config.yaml entries; they override the testbed's
	// (see flinkConfig), except the ports and the per-process keys set on
	// the command line (metrics.reporter.prom.port,
	// taskmanager.resource-id). env.java.opts.all, .jobmanager and
	// .taskmanager are added to the JVMs' options.
	Config map[string]string
	// UserJar, when set, is appended to the classpath of the JobManager and
	// of every TaskManager, as an application image's usrlib: the workload
	// jar (BuildWorkload), so a job graph submitted without jars finds its
	// classes.
	UserJar string
	// Dir is the cluster's work directory: conf/ (config.yaml,
	// log4j.properties), log/ (<process>.log from log4j, <process>.out for
	// stdout and stderr), tmp/, checkpoints/, savepoints/, and an empty
	// plugins/. Empty: a new temporary directory, removed by a successful
	// Stop (kept when the start fails).
	Dir string
	// RepoRoot is the repository, for Resolve; default RepoRoot().
	RepoRoot string
	// Classpath is Flink's classpath; default Resolve(RepoRoot, Version.Profile()).
	Classpath string
	// Java is the java binary; default JavaPath().
	Java string
	// StartTimeout bounds StartFlink; default DefaultStartTimeout.
	StartTimeout time.Duration
}

func (o FlinkOptions) withDefaults() (FlinkOptions, error) {
	if o.Version == "" {
		o.Version = Flink120
	}
	if err := o.Version.Validate(); err != nil {
		return o, err
	}
	switch o.Scheduler {
	case "":
		o.Scheduler = DefaultScheduler
	case "adaptive", "default":
	default:
		return o, fmt.Errorf("unknown scheduler %q (want adaptive or default)", o.Scheduler)
	}
	if o.TaskManagers < 0 || o.Slots < 0 {
		return o, fmt.Errorf("negative TaskManagers (%d) or Slots (%d)", o.TaskManagers, o.Slots)
	}
	if o.TaskManagers == 0 {
		o.TaskManagers = 1
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.JobManagerMemory == "" {
		o.JobManagerMemory = DefaultJobManagerMemory
	}
	if o.TaskManagerMemory == "" {
		o.TaskManagerMemory = DefaultTaskManagerMemory
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	return o, nil
}

// Cluster is a running Flink session cluster: one JobManager and its
// TaskManagers, each a JVM on 127.0.0.1.
type Cluster struct {
	opts      FlinkOptions
	java      string
	classpath string // Flink's, with the user jar
	dir       string
	ownDir    bool
	confDir   string
	logDir    string
	tmpDir    string
	restURL   string
	client    *http.Client

	// The memory options BashJavaUtils derived, computed at the start
	// (the TaskManagers' again by SetTaskManagerConfig).
	jmJVM, jmDynamic, tmJVM, tmDynamic []string
	jmOpts, tmOpts                     []string // env.java.opts.*
	// cfg is config.yaml as last written; tmConfDir the --configDir of
	// the TaskManagers started next (confDir unless SetTaskManagerConfig
	// gave them their own); tmConfs counts those. Under mu.
	cfg       map[string]string
	tmConfDir string
	tmConfs   int

	jm       *proc
	jmReport int // the JobManager's reporter port

	mu       sync.Mutex
	tms      []*taskManager // oldest first
	nextTM   int
	slots    int // taskmanager.numberOfTaskSlots of the TaskManagers started next
	stopped  bool
	keepDirs bool // a failed start keeps its temporary directory
}

type taskManager struct {
	*proc
	id     string // taskmanager.resource-id, also Name
	report int    // reporter port
}

// StartFlink starts a session cluster and returns once its JobManager
// counts opts.TaskManagers TaskManagers and every reporter answers. ctx bounds the start only; the
// cluster runs until Stop. On error nothing is left running, and the error
// names the process at fault with the last lines of its output and log.
func StartFlink(ctx context.Context, opts FlinkOptions) (_ *Cluster, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	c := &Cluster{opts: o, slots: o.Slots, client: &http.Client{Timeout: 5 * time.Second}}
	if c.java = o.Java; c.java == "" {
		if c.java, err = JavaPath(); err != nil {
			return nil, err
		}
	}
	if c.classpath = o.Classpath; c.classpath == "" {
		root := o.RepoRoot
		if root == "" {
			if root, err = RepoRoot(); err != nil {
				return nil, err
			}
		}
		if c.classpath, err = Resolve(ctx, root, o.Version.Profile()); err != nil {
			return nil, err
		}
	}
	if o.UserJar != "" {
		if _, err := os.Stat(o.UserJar); err != nil {
			return nil, fmt.Errorf("user jar: %w", err)
		}
		c.classpath += string(os.PathListSeparator) + o.UserJar
	}
	if c.dir = o.Dir; c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "flinkscale-testbed-flink-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	defer func() {
		if err != nil {
			c.mu.Lock()
			c.keepDirs = true
			c.mu.Unlock()
			_ = c.Stop()
			if c.ownDir {
				err = fmt.Errorf("%w\n(work directory kept: %s)", err, c.dir)
			}
		}
	}()
	if c.dir, err = filepath.Abs(c.dir); err != nil {
		return nil, err
	}
	c.confDir, c.logDir, c.tmpDir = filepath.Join(c.dir, "conf"), filepath.Join(c.dir, "log"), filepath.Join(c.dir, "tmp")
	// An empty plugins/ in the working directory: Flink looks there and
	// warns when it is missing (the reporter is on the classpath instead).
	for _, d := range []string{c.confDir, c.logDir, c.tmpDir, filepath.Join(c.dir, "plugins")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}

	if err := os.WriteFile(c.log4jFile(), []byte(log4jConfig), 0o644); err != nil {
		return nil, err
	}
	// BashJavaUtils reads config.yaml; it is written again with the ports
	// once they are picked, just before the JobManager starts, so that
	// nothing else takes them in between.
	cfg := flinkConfig(o, c.dir, 0, 0)
	if err := c.writeConfig(cfg); err != nil {
		return nil, err
	}
	c.jmOpts = javaOptsFrom(cfg, "env.java.opts", "env.java.opts.all", "env.java.opts.jobmanager")
	c.tmOpts = javaOptsFrom(cfg, "env.java.opts", "env.java.opts.all", "env.java.opts.taskmanager")

	// Both memory computations at once: each is a JVM start.
	memoKey := renderYAML(flinkConfig(o, "", 0, 0)) // the configuration without this run's directories
	var jmErr, tmErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		c.jmJVM, c.jmDynamic, jmErr = c.bashJavaUtils(ctx, c.confDir, "GET_JM_RESOURCE_PARAMS", memoKey)
	})
	wg.Go(func() {
		c.tmJVM, c.tmDynamic, tmErr = c.bashJavaUtils(ctx, c.confDir, "GET_TM_RESOURCE_PARAMS", memoKey)
	})
	wg.Wait()
	if err := errors.Join(jmErr, tmErr); err != nil {
		return nil, err
	}

	var restPort, rpcPort int
	for _, p := range []*int{&restPort, &rpcPort, &c.jmReport} {
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	c.restURL = "http://" + hostPort(restPort)
	if err := c.writeConfig(flinkConfig(o, c.dir, restPort, rpcPort)); err != nil {
		return nil, err
	}

	jm := Process{Name: "jobmanager", Log: filepath.Join(c.logDir, "jobmanager.log"), Output: filepath.Join(c.logDir, "jobmanager.out")}
	dyn := append(slices.Clone(c.jmDynamic), "-D", "metrics.reporter.prom.port="+strconv.Itoa(c.jmReport))
	if c.jm, err = startProc(jm, c.dir, c.javaArgv(jm, c.confDir, c.jmJVM, c.jmOpts, mainJobManager, dyn)); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for range o.TaskManagers {
		if _, err = c.startTaskManager(); err != nil {
			break
		}
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err = c.WaitReady(ctx, o.TaskManagers); err != nil {
		return nil, fmt.Errorf("starting Flink %s: %w", o.Version, err)
	}
	c.mu.Lock()
	procs := append([]reporter{{c.jm, c.jmReport}}, c.reporters(c.tms...)...)
	c.mu.Unlock()
	if err = c.waitReporters(ctx, procs); err != nil {
		return nil, fmt.Errorf("starting Flink %s: %w", o.Version, err)
	}
	return c, nil
}

func (c *Cluster) log4jFile() string { return filepath.Join(c.confDir, "log4j.properties") }

func (c *Cluster) writeConfig(cfg map[string]string) error {
	c.mu.Lock()
	c.cfg = maps.Clone(cfg)
	c.mu.Unlock()
	return os.WriteFile(filepath.Join(c.confDir, "config.yaml"), []byte(renderYAML(cfg)), 0o644)
}

// SetTaskManagerConfig makes the TaskManagers started from now on run with
// extra on top of the cluster's configuration (nil: the cluster's own), as
// new pods of another flinkConfiguration would: their own config.yaml, and
// the JVM options and memory Flink's BashJavaUtils derives from it (a
// memory configuration Flink rejects fails here). Running TaskManagers
// keep theirs: stop them for the new ones to replace them.
func (c *Cluster) SetTaskManagerConfig(ctx context.Context, extra map[string]string) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("the cluster is stopped")
	}
	cfg := maps.Clone(c.cfg)
	c.tmConfs++
	n := c.tmConfs
	c.mu.Unlock()
	key := flinkConfig(c.opts, "", 0, 0) // as Start's memo key: without this run's directories
	dir := c.confDir
	if len(extra) > 0 {
		maps.Copy(cfg, extra)
		maps.Copy(key, extra)
		dir = filepath.Join(c.dir, fmt.Sprintf("conf-taskmanager-%d", n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(renderYAML(cfg)), 0o644); err != nil {
			return err
		}
	}
	jvm, dyn, err := c.bashJavaUtils(ctx, dir, "GET_TM_RESOURCE_PARAMS", renderYAML(key))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.tmConfDir, c.tmJVM, c.tmDynamic = dir, jvm, dyn
	c.mu.Unlock()
	return nil
}

// reporter is a process and its Prometheus reporter port.
type reporter struct {
	p    *proc
	port int
}

func (c *Cluster) reporters(tms ...*taskManager) []reporter {
	out := make([]reporter, len(tms))
	for i, tm := range tms {
		out[i] = reporter{tm.proc, tm.report}
	}
	return out
}

// waitReporters checks that every reporter answers. A reporter that cannot
// bind its port does not stop Flink, which only logs it: without this the
// cluster would start and ReporterTargets would name a dead endpoint.
// Reporters start before their process registers, so this is one request
// each.
func (c *Cluster) waitReporters(ctx context.Context, rs []reporter) error {
	for _, r := range rs {
		url := "http://" + hostPort(r.port) + "/metrics"
		err := c.poll(ctx, r.p.Name+"'s reporter at "+url, func(ctx context.Context) (bool, string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return false, "", err
			}
			resp, err := c.client.Do(req)
			if err != nil {
				return false, "", err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status, nil
		})
		if err != nil {
			return fmt.Errorf("%w%s", err, r.p.tails())
		}
	}
	return nil
}

// javaArgv is the command line of a Flink process.
func (c *Cluster) javaArgv(p Process, confDir string, memory, opts []string, main string, dynamic []string) []string {
	argv := []string{c.java}
	argv = append(argv, memory...)
	argv = append(argv, javaOpens...)
	argv = append(argv, "-Djava.io.tmpdir="+c.tmpDir)
	argv = append(argv, log4jArgs(c.log4jFile(), p.Log)...)
	argv = append(argv, opts...)
	argv = append(argv, "-cp", c.classpath, main, "--configDir", confDir)
	return append(argv, dynamic...)
}

// memoryParams remembers BashJavaUtils' answers in this process, by
// command, java, classpath and configuration: a test binary starting
// several alike clusters pays the JVM start (one to two seconds) once.
var memoryParams struct {
	sync.Mutex
	m map[string][2][]string
}

// bashJavaUtils runs Flink's BashJavaUtils as the start scripts do, to
// split the process memory into JVM options and dynamic properties.
func (c *Cluster) bashJavaUtils(ctx context.Context, confDir, command, memoKey string) (jvm, dynamic []string, err error) {
	key := strings.Join([]string{command, c.java, c.classpath, memoKey}, "\x00")
	memoryParams.Lock()
	r, ok := memoryParams.m[key]
	memoryParams.Unlock()
	if ok {
		return slices.Clone(r[0]), slices.Clone(r[1]), nil
	}
	logFile := filepath.Join(c.logDir, "bash-java-utils-"+strings.ToLower(command)+".log")
	args := append(log4jArgs(c.log4jFile(), logFile), "-cp", c.classpath, mainBashJavaUtils, command, "--configDir", confDir)
	cmd := exec.CommandContext(ctx, c.java, args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if t := lastLines(out, tailLines); t != "" { // an exception: the log only says what it read
			return nil, nil, fmt.Errorf("BashJavaUtils %s: %w; last lines of its output:\n%s", command, err, t)
		}
		return nil, nil, fmt.Errorf("BashJavaUtils %s: %w%s", command, err, fileTail(logFile))
	}
	jvm, dynamic, err = parseBashJavaUtils(out)
	if err != nil {
		return nil, nil, fmt.Errorf("BashJavaUtils %s: %w", command, err)
	}
	memoryParams.Lock()
	if memoryParams.m == nil {
		memoryParams.m = map[string][2][]string{}
	}
	memoryParams.m[key] = [2][]string{slices.Clone(jvm), slices.Clone(dynamic)}
	memoryParams.Unlock()
	return jvm, dynamic, nil
}

// fileTail is the last lines of a file for an error message, or "".
func fileTail(path string) string {
	if t := tailFile(path, tailLines); t != "" {
		return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, t)
	}
	return ""
}

// parseBashJavaUtils reads the two result lines of BashJavaUtils'
// GET_JM_RESOURCE_PARAMS or GET_TM_RESOURCE_PARAMS: the JVM options
// (-Xmx… -Xms… -XX:…) and the dynamic properties ("-D key=value …", program
// arguments after --configDir). Other lines (logging) are ignored, as the
// scripts do.
func parseBashJavaUtils(out []byte) (jvm, dynamic []string, err error) {
	var results []string
	for line := range strings.Lines(string(out)) {
		if _, r, ok := strings.Cut(line, bashJavaUtilsPrefix); ok {
			results = append(results, strings.TrimSpace(r))
		}
	}
	if len(results) != 2 {
		return nil, nil, fmt.Errorf("want 2 lines starting %s, got %d in:\n%s", bashJavaUtilsPrefix, len(results), lastLines(out, tailLines))
	}
	jvm, dynamic = strings.Fields(results[0]), strings.Fields(results[1])
	if len(jvm) == 0 {
		return nil, nil, fmt.Errorf("no JVM options in BashJavaUtils' result")
	}
	for i := 0; i < len(dynamic); i += 2 {
		if dynamic[i] != "-D" || i+1 == len(dynamic) || !strings.Contains(dynamic[i+1], "=") {
			return nil, nil, fmt.Errorf("dynamic properties are not pairs of -D key=value: %q", results[1])
		}
	}
	return jvm, dynamic, nil
}

// flinkConfig is the config.yaml of a testbed cluster: everything on
// 127.0.0.1, fixed ports only where a peer must know them (REST and the
// JobManager's RPC; blob, data and TaskManager RPC ports are picked by the
// processes), every directory under dir, the Prometheus reporter on (its
// port is set per process), and opts.Config on top.
//
// Flink 1.20 and 2.x both read config.yaml (standard YAML). Where 2.x
// renamed a key and dropped the old one, both are written: 1.20 knows both.
func flinkConfig(o FlinkOptions, dir string, restPort, rpcPort int) map[string]string {
	checkpoints := "file://" + filepath.Join(dir, "checkpoints")
	savepoints := "file://" + filepath.Join(dir, "savepoints")
	tmp := filepath.Join(dir, "tmp")
	cfg := map[string]string{
		"jobmanager.rpc.address": loopback,
		"jobmanager.rpc.port":    strconv.Itoa(rpcPort),
		"jobmanager.bind-host":   loopback,
		"taskmanager.bind-host":  loopback,
		"taskmanager.host":       loopback,
		"rest.address":           loopback,
		"rest.bind-address":      loopback,
		"rest.port":              strconv.Itoa(restPort),
		"blob.server.port":       "0",
		"taskmanager.rpc.port":   "0",
		"taskmanager.data.port":  "0",
		// TaskManagers start alongside the JobManager and cannot reach
		// it at first; Flink's default waits 10 s before the next try.
		// (Milliseconds without a unit: a duration in every version.)
		"cluster.registration.error-delay": "1000",

		"jobmanager.memory.process.size":  o.JobManagerMemory,
		"taskmanager.memory.process.size": o.TaskManagerMemory,
		// Flink's default 0.4 leaves a 1 GiB TaskManager 26 MiB of task
		// heap; 0.1 gives it about 200 MiB and RocksDB still 57 MiB.
		"taskmanager.memory.managed.fraction": "0.1",
		"taskmanager.numberOfTaskSlots":       strconv.Itoa(o.Slots),
		"parallelism.default":                 "1",
		"jobmanager.scheduler":                o.Scheduler,

		"metrics.reporter.prom.factory.class": promReporter,
		"rest.flamegraph.enabled":             "false",

		"io.tmp.dirs":            tmp,
		"web.tmpdir":             tmp,
		"blob.storage.directory": tmp,
		// 1.20 and 2.x names of the same two options.
		"state.checkpoints.dir":                 checkpoints,
		"execution.checkpointing.dir":           checkpoints,
		"state.savepoints.dir":                  savepoints,
		"execution.checkpointing.savepoint-dir": savepoints,
	}
	for k, v := range o.Config {
		switch k {
		case "jobmanager.rpc.port", "rest.port", "metrics.reporter.prom.port", "taskmanager.resource-id":
			continue // the testbed's to choose
		}
		cfg[k] = v
	}
	return cfg
}

// javaOptsFrom splits the env.java.opts* entries of cfg into JVM options.
func javaOptsFrom(cfg map[string]string, keys ...string) []string {
	var opts []string
	for _, k := range keys {
		opts = append(opts, strings.Fields(cfg[k])...)
	}
	return opts
}

// renderYAML writes cfg as flat YAML, keys sorted.
func renderYAML(cfg map[string]string) string {
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by flinkscale's testbed (test/testbed).\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", yamlScalar(k), yamlScalar(cfg[k]))
	}
	return b.String()
}

var yamlPlain = regexp.MustCompile(`^[A-Za-z0-9_/.][A-Za-z0-9_/.:=+,@-]*$`)

// yamlScalar is s as a YAML scalar: plain when that reads back as the same
// string, double-quoted otherwise.
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "null", "~", "yes", "no", "on", "off", "y", "n":
		return strconv.Quote(s)
	}
	if yamlPlain.MatchString(s) && !strings.HasSuffix(s, ":") {
		return s
	}
	// Go's escapes (\n \t \" \\ \xNN \uNNNN) are YAML's too.
	return strconv.Quote(s)
}

// startTaskManager starts the next TaskManager; c.mu is held.
func (c *Cluster) startTaskManager() (*taskManager, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.nextTM++
	id := fmt.Sprintf("taskmanager-%d", c.nextTM)
	p := Process{Name: id, Log: filepath.Join(c.logDir, id+".log"), Output: filepath.Join(c.logDir, id+".out")}
	dyn := append(slices.Clone(c.tmDynamic),
		"-D", "taskmanager.resource-id="+id,
		"-D", "taskmanager.numberOfTaskSlots="+strconv.Itoa(c.slots),
		"-D", "metrics.reporter.prom.port="+strconv.Itoa(port))
	confDir := c.tmConfDir
	if confDir == "" {
		confDir = c.confDir
	}
	pr, err := startProc(p, c.dir, c.javaArgv(p, confDir, c.tmJVM, c.tmOpts, mainTaskManager, dyn))
	if err != nil {
		return nil, err
	}
	tm := &taskManager{proc: pr, id: id, report: port}
	c.tms = append(c.tms, tm)
	return tm, nil
}

// RESTURL is the JobManager's REST endpoint, "http://127.0.0.1:<port>".
func (c *Cluster) RESTURL() string { return c.restURL }

// Dir is the cluster's work directory.
func (c *Cluster) Dir() string { return c.dir }

// Version is the cluster's Flink line.
func (c *Cluster) Version() Flink { return c.opts.Version }

// ReporterTargets are the Prometheus reporter endpoints of the JobManager
// and of every TaskManager (oldest first), as a Kubernetes cluster has one
// per pod.
func (c *Cluster) ReporterTargets() []flinkprom.Target {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []flinkprom.Target{{URL: "http://" + hostPort(c.jmReport), Role: flinkprom.JobManager}}
	for _, tm := range c.tms {
		out = append(out, flinkprom.Target{URL: "http://" + hostPort(tm.report), Role: flinkprom.TaskManager})
	}
	return out
}

// Processes are the cluster's running processes: the JobManager, then the
// TaskManagers oldest first.
func (c *Cluster) Processes() []Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Process
	if c.jm != nil {
		out = append(out, c.jm.Process)
	}
	for _, tm := range c.tms {
		out = append(out, tm.Process)
	}
	return out
}

// TaskManagers is the number of TaskManager processes started and not
// removed.
func (c *Cluster) TaskManagers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tms)
}

// AddTaskManager starts one more TaskManager and returns once the
// JobManager lists it and its reporter answers.
func (c *Cluster) AddTaskManager(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("the cluster is stopped")
	}
	tm, err := c.startTaskManager()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	err = c.poll(ctx, tm.id+" to register", func(ctx context.Context) (bool, string, error) {
		ids, err := c.taskManagerIDs(ctx)
		return slices.Contains(ids, tm.id), fmt.Sprintf("TaskManagers %v", ids), err
	})
	if err == nil {
		err = c.waitReporters(ctx, c.reporters(tm))
	}
	if err != nil {
		c.mu.Lock()
		c.tms = slices.DeleteFunc(c.tms, func(t *taskManager) bool { return t == tm })
		c.mu.Unlock()
		return errors.Join(err, tm.stop(StopGrace))
	}
	return nil
}

// RemoveTaskManager stops the newest TaskManager gracefully (SIGTERM: it
// deregisters, as a deleted pod's would) and returns once the JobManager no
// longer lists it.
func (c *Cluster) RemoveTaskManager(ctx context.Context) error {
	c.mu.Lock()
	if c.stopped || len(c.tms) == 0 {
		c.mu.Unlock()
		return errors.New("no TaskManager to remove")
	}
	id := c.tms[len(c.tms)-1].id
	c.mu.Unlock()
	return c.StopTaskManager(ctx, id)
}

// StopTaskManager stops the TaskManager with resource id id gracefully, as
// RemoveTaskManager does the newest, and returns once the JobManager no
// longer lists it.
func (c *Cluster) StopTaskManager(ctx context.Context, id string) error {
	tm, err := c.detach(id)
	if err != nil {
		return err
	}
	if err := tm.stop(StopGrace); err != nil {
		return err
	}
	return c.poll(ctx, tm.id+" to leave", func(ctx context.Context) (bool, string, error) {
		ids, err := c.taskManagerIDs(ctx)
		return err == nil && !slices.Contains(ids, tm.id), fmt.Sprintf("TaskManagers %v", ids), err
	})
}

// KillTaskManager kills the TaskManager with resource id id (SIGKILL to its
// process group: no deregistration, as a node failure or an OOM-killed pod)
// and returns once the process is gone. The JobManager finds out on its
// own, through broken connections and missed heartbeats.
func (c *Cluster) KillTaskManager(id string) error {
	tm, err := c.detach(id)
	if err != nil {
		return err
	}
	if err := signalGroup(tm.PID, syscall.SIGKILL); err != nil && !tm.exited() {
		return fmt.Errorf("killing %s (pid %d): %w", tm.id, tm.PID, err)
	}
	select {
	case <-tm.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) still runs %s after SIGKILL", tm.id, tm.PID, killWait)
	}
}

// detach takes the TaskManager id out of the cluster's list, so that
// waiting on the cluster does not take its end for a failure.
func (c *Cluster) detach(id string) (*taskManager, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, errors.New("the cluster is stopped")
	}
	i := slices.IndexFunc(c.tms, func(t *taskManager) bool { return t.id == id })
	if i < 0 {
		return nil, fmt.Errorf("no TaskManager %q", id)
	}
	tm := c.tms[i]
	c.tms = slices.Delete(c.tms, i, i+1)
	return tm, nil
}

// ReapTaskManagers removes the TaskManagers whose process has ended from
// the cluster's list and returns their ids (with why they ended): a
// supervisor replaces them, as Kubernetes replaces a crashed pod. Until
// then any wait on the cluster fails, naming the ended process.
func (c *Cluster) ReapTaskManagers() map[string]error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]error
	c.tms = slices.DeleteFunc(c.tms, func(t *taskManager) bool {
		if !t.exited() {
			return false
		}
		if out == nil {
			out = map[string]error{}
		}
		out[t.id] = t.exitError()
		return true
	})
	return out
}

// TaskManagerIDs are the resource ids of the TaskManager processes
// started and not removed, oldest first.
func (c *Cluster) TaskManagerIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(c.tms))
	for i, tm := range c.tms {
		ids[i] = tm.id
	}
	return ids
}

// Slots is taskmanager.numberOfTaskSlots of the TaskManagers started next.
func (c *Cluster) Slots() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slots
}

// SetSlots sets taskmanager.numberOfTaskSlots of the TaskManagers started
// from now on (a dynamic property of each, so TaskManagers of different
// shapes can coexist while a pool is replaced); running ones keep theirs.
func (c *Cluster) SetSlots(n int) error {
	if n < 1 {
		return fmt.Errorf("taskmanager.numberOfTaskSlots must be positive, got %d", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slots = n
	return nil
}

// Overview is the part of the JobManager's GET /overview the testbed reads.
type Overview struct {
	TaskManagers   int    `json:"taskmanagers"`
	SlotsTotal     int    `json:"slots-total"`
	SlotsAvailable int    `json:"slots-available"`
	JobsRunning    int    `json:"jobs-running"`
	FlinkVersion   string `json:"flink-version"`
}

// Overview asks the JobManager for GET /overview.
func (c *Cluster) Overview(ctx context.Context) (Overview, error) {
	var o Overview
	err := c.getJSON(ctx, "/overview", &o)
	return o, err
}

// taskManagerIDs are the resource ids of GET /taskmanagers.
func (c *Cluster) taskManagerIDs(ctx context.Context) ([]string, error) {
	var r struct {
		TaskManagers []struct {
			ID string `json:"id"`
		} `json:"taskmanagers"`
	}
	if err := c.getJSON(ctx, "/taskmanagers", &r); err != nil {
		return nil, err
	}
	ids := make([]string, len(r.TaskManagers))
	for i, tm := range r.TaskManagers {
		ids[i] = tm.ID
	}
	sort.Strings(ids)
	return ids, nil
}

func (c *Cluster) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.restURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, lastLines(body, 5))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// WaitReady waits until GET /overview counts exactly want TaskManagers.
// It fails as soon as a process of the cluster has ended, and after
// DefaultStartTimeout when ctx has no deadline.
func (c *Cluster) WaitReady(ctx context.Context, want int) error {
	return c.poll(ctx, fmt.Sprintf("%d TaskManager(s)", want), func(ctx context.Context) (bool, string, error) {
		o, err := c.Overview(ctx)
		return err == nil && o.TaskManagers == want, fmt.Sprintf("%+v", o), err
	})
}

// poll calls check every pollEvery until it returns true, a process of the
// cluster ends, or ctx (bounded by DefaultStartTimeout) ends. Its error
// names what was awaited, the last answer and the JobManager's log tail.
func (c *Cluster) poll(ctx context.Context, what string, check func(context.Context) (bool, string, error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	start := time.Now()
	var last string
	var lastErr error
	for {
		c.mu.Lock()
		procs := []*proc{c.jm}
		for _, tm := range c.tms {
			procs = append(procs, tm.proc)
		}
		stopped := c.stopped
		c.mu.Unlock()
		if stopped {
			return errors.New("the cluster is stopped")
		}
		for _, p := range procs {
			if p.exited() {
				return fmt.Errorf("waiting for %s: %w", what, p.exitError())
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, desc, err := check(rctx)
		cancel()
		if ok {
			return nil
		}
		last, lastErr = desc, err
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("waiting for %s at %s: %v after %s", what, c.restURL, ctx.Err(), time.Since(start).Round(time.Millisecond))
			if lastErr != nil {
				msg += fmt.Sprintf("; last error: %v", lastErr)
			} else {
				msg += "; last answer: " + last
			}
			return errors.New(msg + c.jm.tails())
		case <-time.After(pollEvery):
		}
	}
}

// Stop stops every process of the cluster at once (SIGTERM, StopGrace,
// SIGKILL) and waits for them. A temporary work directory is removed unless
// the start failed. Stop is idempotent.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	var procs []*proc
	if c.jm != nil {
		procs = append(procs, c.jm)
	}
	for _, tm := range c.tms {
		procs = append(procs, tm.proc)
	}
	keep := c.keepDirs
	c.mu.Unlock()
	err := stopAll(procs, StopGrace)
	if err == nil && c.ownDir && !keep {
		err = os.RemoveAll(c.dir)
	}
	return err
}
