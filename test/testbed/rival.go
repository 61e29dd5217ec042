package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RivalRelease is the Flink Kubernetes Operator release whose standalone
// autoscaler (flink-autoscaler-standalone) races flinkscale on the testbed.
//
// Maven Central does not serve flink-autoscaler-standalone (every release
// from 1.6.0 to 1.16.0 answered 404 on 2026-12-05; of flink-autoscaler it
// serves 1.7.0 and 1.10.0 only), so `make rival-jar` builds the release's
// module from the operator's source tag with Maven, its dependencies from
// Maven Central, into bin/rival.
const RivalRelease = "1.15.0"

// RivalJarEnv names a rival jar to use instead of bin/rival's.
const RivalJarEnv = "FLINKSCALE_RIVAL_JAR"

// RivalJar is the shaded flink-autoscaler-standalone jar: $FLINKSCALE_RIVAL_JAR,
// else bin/rival/flink-autoscaler-standalone-<RivalRelease>.jar under root.
func RivalJar(root string) (string, error) {
	if p := os.Getenv(RivalJarEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testbed: %s: %w", RivalJarEnv, err)
		}
		return p, nil
	}
	p := filepath.Join(root, "bin", "rival", "flink-autoscaler-standalone-"+RivalRelease+".jar")
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("testbed: no rival jar at %s: Maven Central does not serve flink-autoscaler-standalone; "+
			"build it with `make rival-jar OPERATOR_SRC=<a clone of apache/flink-kubernetes-operator>` or name one in %s", p, RivalJarEnv)
	} else if err != nil {
		return "", fmt.Errorf("testbed: rival jar: %w", err)
	}
	return p, nil
}

// RivalOptions configure StartRival.
type RivalOptions struct {
	// Jar is the shaded standalone autoscaler (default RivalJar).
	Jar string
	// RESTURL is the Flink cluster whose jobs it scales.
	RESTURL string
	// Config is its configuration: autoscaler.standalone.* and the
	// job.autoscaler.* defaults of every job (job.autoscaler.enabled is
	// set to true unless given).
	Config map[string]string
	// Dir receives its log (rival.log) and output (rival.out).
	Dir string
}

// Rival is a running flink-autoscaler-standalone process.
type Rival struct {
	proc *proc
	// Config is what it was started with.
	Config map[string]string
}

// StartRival starts the Flink project's standalone autoscaler against a
// cluster: it lists the cluster's jobs every control-loop interval,
// collects their metrics through the REST API and rescales them in place
// with PUT /jobs/:id/resource-requirements (the adaptive scheduler must
// run). Its log is INFO, which holds every evaluation's outcome ("All
// vertex processing rates are within target.", a delayed scale-down, or a
// ScalingReport event); ReadRivalLog parses it.
func StartRival(ctx context.Context, o RivalOptions) (*Rival, error) {
	if o.Jar == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		if o.Jar, err = RivalJar(root); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(o.RESTURL)
	if err != nil || u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("testbed: rival: REST URL %q needs a host and a port", o.RESTURL)
	}
	java, err := JavaPath()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	cfg := map[string]string{
		"autoscaler.standalone.fetcher.flink-cluster.host": u.Hostname(),
		"autoscaler.standalone.fetcher.flink-cluster.port": u.Port(),
		"job.autoscaler.enabled":                           "true",
	}
	maps.Copy(cfg, o.Config)
	log4j := filepath.Join(o.Dir, "rival-log4j2.properties")
	if err := os.WriteFile(log4j, []byte(log4jConfig+rivalLog4j), 0o644); err != nil {
		return nil, err
	}
	p := Process{Name: "flink-autoscaler-standalone", Log: filepath.Join(o.Dir, "rival.log"), Output: filepath.Join(o.Dir, "rival.out")}
	argv := append([]string{java, "-Xmx256m"}, log4jArgs(log4j, p.Log)...)
	argv = append(argv, "-cp", o.Jar, "org.apache.flink.autoscaler.standalone.StandaloneAutoscalerEntrypoint")
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		argv = append(argv, "--"+k, cfg[k])
	}
	pr, err := startProc(p, o.Dir, argv)
	if err != nil {
		return nil, err
	}
	r := &Rival{proc: pr, Config: cfg}
	// Up once it logs its configuration; a bad jar or option ends it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(p.Log); strings.Contains(string(b), "standalone autoscaler is started") {
			return r, nil
		}
		if pr.exited() {
			return nil, fmt.Errorf("testbed: rival: %w", pr.exitError())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = pr.stop(StopGrace)
			return nil, fmt.Errorf("testbed: rival did not start within 60 s%s", pr.tails())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rivalLog4j adds DEBUG for the class whose one line per control loop
// and job ("Collected metrics", "Not ready for scaling", waiting for a
// running job) marks when the rival sampled: RivalTicks reads them.
const rivalLog4j = `logger.rivalloop.name = org.apache.flink.autoscaler.JobAutoScalerImpl
logger.rivalloop.level = DEBUG
`

// RivalTicks follows the rival's log for the times at which its control
// loop looked at a job (a DEBUG line of JobAutoScalerImpl), so that a
// policy run beside it can sample in step with it. Each New reads only
// what the log gained since the last call.
type RivalTicks struct {
	path    string
	off     int64
	partial []byte // a last line not yet ended
}

// NewRivalTicks follows the log at path from its start.
func NewRivalTicks(path string) *RivalTicks { return &RivalTicks{path: path} }

// New returns the ticks logged since the last call, in order.
func (r *RivalTicks) New() ([]time.Time, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, r.off, 1<<62))
	if err != nil {
		return nil, err
	}
	r.off += int64(len(b))
	b = append(r.partial, b...)
	end := bytes.LastIndexByte(b, '\n') + 1
	r.partial = append([]byte(nil), b[end:]...)
	var out []time.Time
	for _, line := range strings.Split(string(b[:end]), "\n") {
		if !strings.Contains(line, " DEBUG ") || !strings.Contains(line, "org.apache.flink.autoscaler.JobAutoScalerImpl") {
			continue
		}
		m := rivalStamp.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if at, err := time.ParseInLocation("2006-01-02 15:04:05,000", m[1], time.Local); err == nil {
			out = append(out, at)
		}
	}
	return out, nil
}

// Log is the path of its log.
func (r *Rival) Log() string { return r.proc.Log }

// Err is why it ended early, nil while it runs.
func (r *Rival) Err() error {
	if r.proc.exited() {
		return r.proc.exitError()
	}
	return nil
}

// Stop ends it.
func (r *Rival) Stop() error { return r.proc.stop(StopGrace) }

// RivalOutcome is one evaluation's outcome as the rival logs it.
type RivalOutcome string

const (
	// RivalWithinTarget: no vertex outside its utilization bounds.
	RivalWithinTarget RivalOutcome = "within-target"
	// RivalAtTarget: the recommended parallelism is the current one.
	RivalAtTarget RivalOutcome = "at-target"
	// RivalDelayed: a vertex's scale-down waits for scale-down.interval.
	RivalDelayed RivalOutcome = "delayed"
	// RivalScaling: a rescale to the Parallelism given.
	RivalScaling RivalOutcome = "scaling"
	// RivalBacklog: a source is processing its backlog.
	RivalBacklog RivalOutcome = "backlog"
)

// RivalEntry is one line of the rival's log that says what it decided.
type RivalEntry struct {
	At      time.Time
	Outcome RivalOutcome
	// Vertex is the delayed vertex (RivalDelayed, RivalBacklog).
	Vertex string
	// From and To are the scaled vertices' parallelism by vertex id
	// (RivalScaling).
	From, To map[string]int
}

var (
	rivalStamp = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3})`)
	// "Vertex ID 0a448493b4782967b150582570326227 | Parallelism 2 -> 4 | ..."
	rivalVertex  = regexp.MustCompile(`Vertex ID ([0-9a-f]{32}) \| Parallelism (\d+) -> (\d+)`)
	rivalDelayed = regexp.MustCompile(`The scale down of ([0-9a-f]{32}) is delayed`)
	rivalBacklog = regexp.MustCompile(`Currently processing backlog at source ([0-9a-f]{32})`)
)

// ReadRivalLog parses the rival's log (the testbed's log4j layout, local
// time stamps) into the entries that carry a decision, in order.
func ReadRivalLog(path string) ([]RivalEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []RivalEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		m := rivalStamp.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05,000", m[1], time.Local)
		if err != nil {
			continue
		}
		e := RivalEntry{At: at}
		switch {
		case strings.Contains(line, "All vertex processing rates are within target"):
			e.Outcome = RivalWithinTarget
		case strings.Contains(line, "All job vertices are currently running at their target parallelism"):
			e.Outcome = RivalAtTarget
		case rivalDelayed.MatchString(line):
			e.Outcome, e.Vertex = RivalDelayed, rivalDelayed.FindStringSubmatch(line)[1]
		case rivalBacklog.MatchString(line):
			e.Outcome, e.Vertex = RivalBacklog, rivalBacklog.FindStringSubmatch(line)[1]
		case strings.Contains(line, "reason : ScalingReport") && strings.Contains(line, "Scaling execution enabled"):
			e.Outcome, e.From, e.To = RivalScaling, map[string]int{}, map[string]int{}
			for _, v := range rivalVertex.FindAllStringSubmatch(line, -1) {
				e.From[v[1]], _ = strconv.Atoi(v[2])
				e.To[v[1]], _ = strconv.Atoi(v[3])
			}
		default:
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
