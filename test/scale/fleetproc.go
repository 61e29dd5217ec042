package scale

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// The fleet in a process of its own (Config.FleetCommand): the controller's
// process then holds nothing but the controller and the measurement, as a
// controller pod does, and its CPU time and RSS are the controller's alone.
// In one process the simulator's REST handlers, kfake and the simulator's
// heap share the Go runtime with the controller: the garbage collector's
// work and the heap's growth between collections (GOGC) cannot be split
// between them, and a baseline taken before the controller starts does not
// see the simulator's serving.

// fleetInfo is what the controller's objects point at.
type fleetInfo struct {
	URL     string   `json:"url"`     // the REST server: job i at URL/job-i
	Brokers []string `json:"brokers"` // kfake
	JobIDs  []string `json:"jobIDs"`
	Faulty  []bool   `json:"faulty"` // job i's REST API fails
	Stats   string   `json:"stats"`  // GET: fleetStats as JSON
	PID     int      `json:"pid"`
}

// fleetStats are the fleet's counters, cumulative.
type fleetStats struct {
	Rest        []int64 `json:"rest"` // requests, per job
	RestErrors  int64   `json:"restErrors"`
	RestCPU     int64   `json:"restCPU"`     // ns of handler thread time
	AdvanceCPU  int64   `json:"advanceCPU"`  // ns of the advance loop's thread time
	AdvanceWall int64   `json:"advanceWall"` // ns of the advance loop's work
	SimErrors   int     `json:"simErrors"`
	SimFirst    string  `json:"simFirst,omitempty"`
	// The fleet process's own CPU time (ns) and memory (bytes); zero when
	// the fleet runs in the controller's process.
	ProcessCPU int64  `json:"processCPU"`
	RSS        uint64 `json:"rss"`
}

// fleetHandle is a running fleet, in this process or another.
type fleetHandle interface {
	info() fleetInfo
	stats(ctx context.Context) (fleetStats, error)
	close()
}

func (f *fleet) info() fleetInfo {
	return fleetInfo{URL: f.url, Brokers: f.broker.Addrs(), JobIDs: f.jobIDs, Faulty: f.faulty}
}

func (f *fleet) stats(context.Context) (fleetStats, error) {
	s := fleetStats{
		Rest: make([]int64, len(f.jobs)), RestErrors: f.restErrors.Load(), RestCPU: f.restCPU.Load(),
		AdvanceCPU: f.advanceCPU.Load(), AdvanceWall: f.advanceWall.Load(),
	}
	for i := range s.Rest {
		s.Rest[i] = f.restCount[i].Load()
	}
	s.SimErrors, s.SimFirst = f.errors()
	return s, nil
}

// statsPath is the fleet server's path for its counters (not a job's).
const statsPath = "/_stats"

// FleetArgs are the arguments that make a process serve a fleet
// (ServeFleet): the hidden command flinkscale bench-scale-fleet, or a test
// binary's TestMain, reads them.
func FleetArgs(jobs int, faulty float64) []string {
	return []string{"--jobs", strconv.Itoa(jobs), "--faulty", strconv.FormatFloat(faulty, 'g', -1, 64)}
}

// ServeFleet runs a fleet of jobs simulated jobs (a fraction faulty of them
// failing), its REST server and kfake on 127.0.0.1, until ctx ends or stdin
// reaches its end (the parent closed it, or died). Its first line on out is
// the fleet's address, as JSON; its counters are served at statsPath.
func ServeFleet(ctx context.Context, jobs int, faulty float64, stdin io.Reader, out io.Writer) error {
	if jobs < 1 || faulty < 0 || faulty >= 1 {
		return fmt.Errorf("a fleet needs at least one job and a faulty fraction in [0, 1), not %d and %g", jobs, faulty)
	}
	f, err := newFleet(jobs, faulty)
	if err != nil {
		return err
	}
	defer f.close()
	f.mux.HandleFunc(statsPath, func(w http.ResponseWriter, r *http.Request) {
		s, _ := f.stats(r.Context())
		s.ProcessCPU = int64(processCPU())
		s.RSS = readProcStatus().rss
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.advanceLoop(ctx)
	}()
	inf := f.info()
	inf.Stats = f.url + statsPath
	inf.PID = os.Getpid()
	if err := json.NewEncoder(out).Encode(inf); err != nil {
		cancel()
		<-done
		return fmt.Errorf("writing the fleet's address: %w", err)
	}
	<-ctx.Done()
	<-done
	return nil
}

// procFleet is a fleet served by a child process (ServeFleet).
type procFleet struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	inf    fleetInfo
	client *http.Client
	exited chan struct{}
	err    error // the child's exit, once exited is closed
	once   sync.Once
}

// startProcFleet starts command (its arguments followed by FleetArgs) and
// reads the fleet's address from its first line. The child's stderr is
// passed through to stderr.
func startProcFleet(ctx context.Context, command []string, jobs int, faulty float64, stderr io.Writer) (_ *procFleet, err error) {
	if len(command) == 0 {
		return nil, errors.New("no fleet command")
	}
	cmd := exec.Command(command[0], append(append([]string{}, command[1:]...), FleetArgs(jobs, faulty)...)...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the fleet process %s: %w", command[0], err)
	}
	p := &procFleet{cmd: cmd, stdin: stdin, client: &http.Client{Timeout: 10 * time.Second}, exited: make(chan struct{})}
	lines := make(chan []byte, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadBytes('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	// A fleet of 5,000 jobs takes a minute or two to start.
	select {
	case line := <-lines:
		if err := json.Unmarshal(line, &p.inf); err != nil || p.inf.URL == "" {
			<-p.exited
			return nil, fmt.Errorf("the fleet process did not start (%v): %q", p.err, line)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, nil
}

func (p *procFleet) info() fleetInfo { return p.inf }

func (p *procFleet) stats(ctx context.Context) (fleetStats, error) {
	var s fleetStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.inf.Stats, nil)
	if err != nil {
		return s, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("the fleet's counters: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("the fleet's counters: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("the fleet's counters: %w", err)
	}
	return s, nil
}

// close ends the child: its stdin closed, then killed if it has not
// exited within 10 s.
func (p *procFleet) close() {
	p.once.Do(func() {
		_ = p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}
