package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flinkscale/flinkscale/api/v1alpha1"
	"github.com/flinkscale/flinkscale/controllers"
	"github.com/flinkscale/flinkscale/controllers/optin"
	"github.com/flinkscale/flinkscale/controllers/report"
	"github.com/flinkscale/flinkscale/controllers/target"
	"github.com/flinkscale/flinkscale/metrics"
	"github.com/flinkscale/flinkscale/metrics/flink"
	"github.com/flinkscale/flinkscale/metrics/kafka"
	"github.com/flinkscale/flinkscale/scaling"
)

// recommend writes the recommendation report of a saved snapshot, or of a
// live job observed over a window (the in-cluster mode comes next). Exit
// codes: 0 no change, 3 a rescale is recommended, 1 an error.
func recommend(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	fl := flag.NewFlagSet("recommend", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	snapPath := fl.String("snapshot", "", "snapshot JSON file to replay (docs/snapshot.md)")
	policyPath := fl.String("policy", "", "policy JSON file; default: the default policy")
	historyPath := fl.String("history", "", "history JSON file; default: none")
	nowFlag := fl.String("now", "", "decision time (RFC 3339); default: the snapshot's windowEnd")
	output := fl.String("o", "table", "output: table, json, yaml, markdown or html")
	name := fl.String("name", "", "the FlinkDeployment's name, for the patch (default: the job name)")
	namespace := fl.String("n", "", "the FlinkDeployment's namespace, for the patch")
	mode := fl.String("mode", "native", "the deployment mode (native or standalone): which fields the patch sets")
	var live liveFlags
	fl.StringVar(&live.flinkURL, "flink-url", "", "live mode: the JobManager REST API (http://host:8081)")
	fl.StringVar(&live.jobID, "job-id", "", "live mode: the job (default: the only running job)")
	fl.StringVar(&live.brokers, "kafka-brokers", "", "live mode: comma-separated Kafka bootstrap servers (lag and arrival rates from the brokers)")
	fl.StringVar(&live.group, "kafka-group", "", "live mode: the job's Kafka consumer group")
	fl.StringVar(&live.topics, "kafka-topics", "", "live mode: comma-separated topics (default: every topic the group has offsets for)")
	fl.DurationVar(&live.observe, "observe", 2*time.Minute, "live mode: how long to sample")
	fl.DurationVar(&live.interval, "interval", 15*time.Second, "live mode: time between samples")
	kubeconfig := fl.String("kubeconfig", "", "cluster mode: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	saveSnapshot := fl.String("save-snapshot", "", "write what was observed to this file (for replay with --snapshot and bug reports)")
	quiet := fl.Bool("quiet", false, "live mode: no progress bar")
	// Flags may come before and after the object's name (kubectl style).
	var names []string
	for rest := args; ; {
		if err := fl.Parse(rest); err != nil {
			return exitError, fmt.Errorf("recommend: %w", err)
		}
		if fl.NArg() == 0 {
			break
		}
		names = append(names, fl.Arg(0))
		rest = fl.Args()[1:]
	}
	object := ""
	switch len(names) {
	case 0:
	case 1:
		object = names[0]
	default:
		return exitError, fmt.Errorf("recommend: one FlinkScalingPolicy or FlinkDeployment name at most, got %q", names)
	}
	switch {
	case object != "" && *snapPath != "":
		return exitError, errors.New("recommend: give a snapshot or a cluster object, not both")
	case object == "" && (*snapPath == "") == (live.flinkURL == ""):
		return exitError, errors.New("recommend: give --snapshot FILE (replay), --flink-url URL (live) or a FlinkScalingPolicy or FlinkDeployment name (cluster)")
	}
	if !slices.Contains(report.Formats, *output) {
		return exitError, fmt.Errorf("recommend: -o must be one of %s, got %q", strings.Join(report.Formats, ", "), *output)
	}
	if *mode != "native" && *mode != "standalone" {
		return exitError, fmt.Errorf("recommend: --mode must be native or standalone, got %q", *mode)
	}
	var snap scaling.Snapshot
	var d scaling.Decision
	var obs observation
	source := "snapshot " + filepath.Base(*snapPath)
	if *snapPath != "" {
		var err error
		if snap, obs.policy, d, err = decideFiles(*snapPath, *policyPath, *historyPath, *nowFlag); err != nil {
			return exitError, fmt.Errorf("recommend: %w", err)
		}
	} else {
		var bar *progressBar
		if !*quiet {
			bar = &progressBar{w: stderr, width: 30}
		}
		var err error
		if object != "" {
			var where clusterTarget
			if snap, d, where, obs, err = observeCluster(ctx, *kubeconfig, *namespace, object, live, bar); err != nil {
				return exitError, fmt.Errorf("recommend: %w", err)
			}
			source = fmt.Sprintf("%s, job %s, observed for %s", where.what, snap.JobID, live.observe)
			*name, *namespace, *mode = where.name, where.namespace, where.mode
		} else {
			if snap, d, obs, err = observeLive(ctx, live, *policyPath, *historyPath, bar); err != nil {
				return exitError, fmt.Errorf("recommend: %w", err)
			}
			source = fmt.Sprintf("job %s at %s, observed for %s", snap.JobID, live.flinkURL, live.observe)
		}
	}
	if *saveSnapshot != "" {
		b, err := json.MarshalIndent(snap, "", "  ")
		if err == nil {
			err = os.WriteFile(*saveSnapshot, append(b, '\n'), 0o644)
		}
		if err != nil {
			return exitError, fmt.Errorf("recommend: --save-snapshot: %w", err)
		}
	}
	r := report.New(d, snap, report.Options{
		Source: source, Name: *name, Namespace: *namespace, Mode: *mode,
		Policy: &obs.policy, Observed: obs.points,
	})
	if err := r.Write(stdout, *output); err != nil {
		return exitError, fmt.Errorf("recommend: writing the report: %w", err)
	}
	if r.Change {
		return exitScale, nil
	}
	return exitNoChange, nil
}

// liveFlags are the live mode's flags.
type liveFlags struct {
	flinkURL, jobID        string
	brokers, group, topics string
	observe, interval      time.Duration
}

// observation is what the live and cluster modes add to the decision: the
// policy decided with and the job over the window, for the report.
type observation struct {
	policy scaling.Policy
	points []report.Point
}

func observed(w *metrics.Window, policy scaling.Policy) observation {
	return observation{policy: policy, points: report.Series(w.Series())}
}

// observeLive samples a running job through the collectors the controller
// uses for the observation window and decides on the snapshot. The policy's
// metrics window becomes the span observed (a short look is still a
// decision, on the samples there are).
func observeLive(ctx context.Context, f liveFlags, policyPath, historyPath string, bar *progressBar) (scaling.Snapshot, scaling.Decision, observation, error) {
	fail := func(err error) (scaling.Snapshot, scaling.Decision, observation, error) {
		return scaling.Snapshot{}, scaling.Decision{}, observation{}, err
	}
	if f.interval <= 0 || f.observe < f.interval {
		return fail(fmt.Errorf("--observe (%s) must be at least one --interval (%s)", f.observe, f.interval))
	}
	if (f.brokers == "") != (f.group == "") {
		return fail(errors.New("--kafka-brokers and --kafka-group go together"))
	}
	policy, history, err := readPolicyHistory(policyPath, historyPath)
	if err != nil {
		return fail(err)
	}
	rc, err := flink.New(f.flinkURL)
	if err != nil {
		return fail(fmt.Errorf("--flink-url: %w", err))
	}
	fc := flink.NewCollector(rc)
	var kc *kafka.Collector
	var topics []string
	if f.brokers != "" {
		if kc, err = kafka.New(kafka.Config{BootstrapServers: splitList(f.brokers)}); err != nil {
			return fail(fmt.Errorf("--kafka-brokers: %w", err))
		}
		defer kc.Close()
		topics = splitList(f.topics)
	}
	var ks []kafkaTopicsSource
	if kc != nil {
		ks = append(ks, kafkaTopicsSource{kc, f.group, topics})
	}
	w, err := sample(ctx, f, fc, f.jobID, ks, bar)
	if err != nil {
		return fail(err)
	}
	snap, missing := w.Snapshot()
	// The decision's window is what was observed.
	if span := snap.WindowEnd.Sub(snap.WindowStart); span > 0 {
		policy.MetricsWindow = scaling.D(span)
	}
	d := scaling.Decide(snap, policy, history, time.Now())
	if d.Action == scaling.ActionScale {
		d = d.HoldForMissing(missing)
	}
	return snap, d, observed(w, policy), nil
}

// kafkaTopicsSource is one consumer group to sample.
type kafkaTopicsSource struct {
	src    controllers.KafkaSource
	group  string
	topics []string
}

// sample collects f.observe/f.interval+1 samples of the job (and its
// consumer groups, merged into one brokers' sample) into a window.
func sample(ctx context.Context, f liveFlags, fc controllers.FlinkSource, jobID string, ks []kafkaTopicsSource, bar *progressBar) (*metrics.Window, error) {
	// One interval of slack: collections take time, and the first sample
	// must not fall out of a window exactly --observe long.
	w := metrics.NewWindow(f.observe + f.interval)
	n := int(f.observe/f.interval) + 1
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(f.interval):
			}
		}
		fs, err := fc.Collect(ctx, jobID)
		if err != nil {
			return nil, fmt.Errorf("collecting from Flink at %s: %w", f.flinkURL, err)
		}
		jobID = fs.JobID
		// Stamped when the collection ended, as the brokers' sample taken
		// next is: the two describe the same moment.
		fs.At = time.Now()
		w.AddFlink(fs)
		if len(ks) > 0 {
			merged := metrics.KafkaSample{At: fs.At}
			for _, k := range ks {
				s, err := k.src.Collect(ctx, k.group, k.topics)
				if err != nil {
					return nil, fmt.Errorf("collecting from Kafka (group %s): %w", k.group, err)
				}
				merged.Group, merged.GroupState = s.Group, s.GroupState
				merged.Partitions = append(merged.Partitions, s.Partitions...)
				merged.Missing = append(merged.Missing, s.Missing...)
			}
			w.AddKafka(merged)
		}
		if bar != nil {
			bar.update(i+1, n, "sampling job "+jobID)
		}
	}
	if bar != nil {
		bar.finish()
	}
	return w, nil
}

// clusterTarget is what the cluster mode found.
type clusterTarget struct {
	what, name, namespace, mode string
}

// observeCluster finds a FlinkScalingPolicy (or, failing that, a
// FlinkDeployment) by name, observes its job through the sources the
// controller would open (REST URL, Kafka triggers and their Secrets; an
// annotated deployment's opt-in settings), and decides with the policy and
// the history in its status.
func observeCluster(ctx context.Context, kubeconfig, ns, name string, f liveFlags, bar *progressBar) (scaling.Snapshot, scaling.Decision, clusterTarget, observation, error) {
	fail := func(err error) (scaling.Snapshot, scaling.Decision, clusterTarget, observation, error) {
		return scaling.Snapshot{}, scaling.Decision{}, clusterTarget{}, observation{}, err
	}
	if f.interval <= 0 || f.observe < f.interval {
		return fail(fmt.Errorf("--observe (%s) must be at least one --interval (%s)", f.observe, f.interval))
	}
	c, ns, err := clusterClient(kubeconfig, ns)
	if err != nil {
		return fail(err)
	}
	pol := &v1alpha1.FlinkScalingPolicy{}
	what := "FlinkScalingPolicy " + ns + "/" + name
	err = c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, pol)
	switch {
	case apierrors.IsNotFound(err):
		pol = nil
	case err != nil:
		return fail(fmt.Errorf("reading FlinkScalingPolicy %s/%s: %w", ns, name, err))
	}
	fdName := name
	if pol != nil {
		fdName = pol.Spec.TargetRef.Name
		if k := pol.Spec.TargetRef.EffectiveKind(); k != v1alpha1.KindFlinkDeployment {
			return fail(fmt.Errorf("%s targets %s %s: recommend reads FlinkDeployments from the cluster; observe this job with --flink-url (its JobManager's REST API) instead, or read the policy's own report (kubectl get fsp %s -o yaml)", what, k, fdName, name))
		}
	}
	fd := target.New()
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: fdName}, fd); err != nil {
		if apierrors.IsNotFound(err) {
			if pol == nil {
				return fail(fmt.Errorf("no FlinkScalingPolicy or FlinkDeployment named %s in namespace %s", name, ns))
			}
			return fail(fmt.Errorf("%s targets FlinkDeployment %s, which does not exist", what, fdName))
		}
		return fail(fmt.Errorf("reading FlinkDeployment %s/%s: %w", ns, fdName, err))
	}
	d, err := target.Read(fd)
	if err != nil {
		return fail(fmt.Errorf("FlinkDeployment %s/%s: %w", ns, fdName, err))
	}
	if d.JobID == "" {
		return fail(fmt.Errorf("FlinkDeployment %s/%s reports no job yet", ns, fdName))
	}
	if pol == nil {
		what = "FlinkDeployment " + ns + "/" + fdName
		pol = &v1alpha1.FlinkScalingPolicy{}
		pol.Namespace, pol.Name = ns, fdName
		pol.Spec.TargetRef.Name = fdName
		if optin.Enabled(fd.GetAnnotations()) {
			if spec, _, err := optin.PolicySpec(fdName, fd.GetAnnotations(), d.Configuration); err == nil {
				pol.Spec = spec
			}
		}
	}
	policy, err := pol.Spec.ScalingPolicy()
	if err != nil {
		return fail(fmt.Errorf("%s: %w", what, err))
	}
	if f.flinkURL != "" {
		if pol.Spec.Triggers == nil {
			pol.Spec.Triggers = &v1alpha1.Triggers{}
		}
		pol.Spec.Triggers.FlinkMetrics = &v1alpha1.FlinkMetricsSource{REST: &v1alpha1.FlinkRESTSource{URL: f.flinkURL}}
	}
	srcs := &controllers.ClientSources{Reader: c, Timeout: 10 * time.Second}
	defer func() {
		srcs.Forget(types.NamespacedName{Namespace: pol.Namespace, Name: pol.Name})
	}()
	fs, err := srcs.Flink(ctx, pol, d)
	if err != nil {
		return fail(err)
	}
	var ks []kafkaTopicsSource
	if t := pol.Spec.Triggers; t != nil {
		for _, kt := range t.Kafka {
			k, err := srcs.Kafka(ctx, pol, kt)
			if err != nil {
				return fail(err)
			}
			ks = append(ks, kafkaTopicsSource{k, kt.ConsumerGroup, kt.Topics})
		}
	}
	if f.flinkURL == "" {
		f.flinkURL = "the job's REST API"
	}
	w, err := sample(ctx, f, fs, d.JobID, ks, bar)
	if err != nil {
		return fail(err)
	}
	snap, missing := w.Snapshot()
	snap.UpgradeMode = d.UpgradeMode
	if !(snap.TaskManagers.CPU > 0) && d.TaskManagerCPU > 0 {
		snap.TaskManagers.CPU = scaling.Float(d.TaskManagerCPU)
	}
	if span := snap.WindowEnd.Sub(snap.WindowStart); span > 0 {
		policy.MetricsWindow = scaling.D(span)
	}
	dec := scaling.Decide(snap, policy, pol.Status.History.ToHistory(), time.Now())
	if dec.Action == scaling.ActionScale {
		dec = dec.HoldForMissing(missing)
	}
	return snap, dec, clusterTarget{what: what, name: d.Name, namespace: ns, mode: d.Mode}, observed(w, policy), nil
}
