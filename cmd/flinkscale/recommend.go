package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/spf13/cobra"

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

// recommendOptions are recommend's flags.
type recommendOptions struct {
	snapshot, policy, history, now, output string
	name, namespace, mode                  string
	kubeconfig, saveSnapshot               string
	quiet                                  bool
	live                                   liveFlags
}

func newRecommendCommand(a *app) *cobra.Command {
	var o recommendOptions
	cmd := &cobra.Command{
		Use:   "recommend (--snapshot FILE | --flink-url URL [--kafka-brokers B --kafka-group G] | NAME [-n NAMESPACE]) [flags]",
		Short: "What flinkscale would do with a job, and why: from a snapshot, a live job or a cluster object",
		Long: `The recommendation report of a saved snapshot (--snapshot), a live job
observed over a window (--flink-url, --kafka-brokers, --kafka-group), or a
FlinkScalingPolicy or FlinkDeployment in a cluster (NAME): per vertex current
→ recommended parallelism and why, the resource plan, lag, predicted
downtime, and the patch Apply mode would send.

Exit code 0: no change; 3: a rescale is recommended; 1: error.`,
		Example: examplesFor(`  flinkscale recommend --snapshot scaling/examples/orders-surge.json -n streaming
  flinkscale recommend --flink-url http://127.0.0.1:8081 --kafka-brokers 127.0.0.1:9092 --kafka-group orders --observe 2m
  flinkscale recommend orders -n flink-jobs -ohtml > orders.html`),
		GroupID: groupOperate,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setCode(recommend(cmd.Context(), o, args, a.stdout, a.stderr))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.snapshot, "snapshot", "", "snapshot JSON file to replay (docs/snapshot.md)")
	fl.StringVar(&o.policy, "policy", "", "policy JSON file; default: the default policy")
	fl.StringVar(&o.history, "history", "", "history JSON file; default: none")
	fl.StringVar(&o.now, "now", "", "decision time (RFC 3339); default: the snapshot's windowEnd")
	fl.StringVarP(&o.output, "output", "o", "table", "output: "+strings.Join(report.Formats, ", "))
	fl.StringVar(&o.name, "name", "", "the FlinkDeployment's name, for the patch (default: the job name)")
	fl.StringVarP(&o.namespace, "namespace", "n", "", "cluster mode: the namespace of NAME; otherwise the FlinkDeployment's namespace, for the patch")
	fl.StringVar(&o.mode, "mode", "native", "the deployment mode (native or standalone): which fields the patch sets")
	fl.StringVar(&o.live.flinkURL, "flink-url", "", "live mode: the JobManager REST API (http://host:8081)")
	fl.StringVar(&o.live.jobID, "job-id", "", "live mode: the job (default: the only running job)")
	fl.StringVar(&o.live.brokers, "kafka-brokers", "", "live mode: comma-separated Kafka bootstrap servers (lag and arrival rates from the brokers)")
	fl.StringVar(&o.live.group, "kafka-group", "", "live mode: the job's Kafka consumer group")
	fl.StringVar(&o.live.topics, "kafka-topics", "", "live mode: comma-separated topics (default: every topic the group has offsets for)")
	fl.DurationVar(&o.live.observe, "observe", 2*time.Minute, "live mode: how long to sample")
	fl.DurationVar(&o.live.interval, "interval", 15*time.Second, "live mode: time between samples")
	fl.StringVar(&o.kubeconfig, "kubeconfig", "", "cluster mode: kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
	fl.StringVar(&o.saveSnapshot, "save-snapshot", "", "write what was observed to this file (for replay with --snapshot and bug reports)")
	fl.BoolVar(&o.quiet, "quiet", false, "live mode: no progress bar")
	jsonFiles(cmd, "snapshot", "policy", "history", "save-snapshot")
	anyFiles(cmd, "kubeconfig")
	fixedValues(cmd, "output", report.Formats...)
	fixedValues(cmd, "mode", "native", "standalone")
	clusterCompletion(cmd, policyAndDeploymentNames)
	return cmd
}

// recommend writes the recommendation report of a saved snapshot, a live
// job observed over a window, or a policy or FlinkDeployment in a cluster.
// Exit codes: 0 no change, 3 a rescale is recommended, 1 an error.
func recommend(ctx context.Context, o recommendOptions, names []string, stdout, stderr io.Writer) (int, error) {
	object := ""
	switch len(names) {
	case 0:
	case 1:
		object = names[0]
	default:
		return exitError, fmt.Errorf("recommend: one FlinkScalingPolicy or FlinkDeployment name at most, got %q", names)
	}
	switch {
	case object != "" && o.snapshot != "":
		return exitError, errors.New("recommend: give a snapshot or a cluster object, not both")
	case object == "" && (o.snapshot == "") == (o.live.flinkURL == ""):
		return exitError, errors.New("recommend: give --snapshot FILE (replay), --flink-url URL (live) or a FlinkScalingPolicy or FlinkDeployment name (cluster)")
	}
	if !slices.Contains(report.Formats, o.output) {
		return exitError, fmt.Errorf("recommend: -o must be one of %s, got %q", strings.Join(report.Formats, ", "), o.output)
	}
	if o.mode != "native" && o.mode != "standalone" {
		return exitError, fmt.Errorf("recommend: --mode must be native or standalone, got %q", o.mode)
	}
	var snap scaling.Snapshot
	var d scaling.Decision
	var obs observation
	source := "snapshot " + filepath.Base(o.snapshot)
	if o.snapshot != "" {
		var err error
		if snap, obs.policy, d, err = decideFiles(o.snapshot, o.policy, o.history, o.now); err != nil {
			return exitError, fmt.Errorf("recommend: %w", err)
		}
	} else {
		var bar *progressBar
		if !o.quiet {
			bar = &progressBar{w: stderr, width: 30}
		}
		var err error
		if object != "" {
			var where clusterTarget
			if snap, d, where, obs, err = observeCluster(ctx, o.kubeconfig, o.namespace, object, o.live, bar); err != nil {
				return exitError, fmt.Errorf("recommend: %w", err)
			}
			source = fmt.Sprintf("%s, job %s, observed for %s", where.what, snap.JobID, o.live.observe)
			o.name, o.namespace, o.mode = where.name, where.namespace, where.mode
		} else {
			if snap, d, obs, err = observeLive(ctx, o.live, o.policy, o.history, bar); err != nil {
				return exitError, fmt.Errorf("recommend: %w", err)
			}
			source = fmt.Sprintf("job %s at %s, observed for %s", snap.JobID, o.live.flinkURL, o.live.observe)
		}
	}
	if o.saveSnapshot != "" {
		b, err := json.MarshalIndent(snap, "", "  ")
		if err == nil {
			err = os.WriteFile(o.saveSnapshot, append(b, '\n'), 0o644)
		}
		if err != nil {
			return exitError, fmt.Errorf("recommend: --save-snapshot: %w", err)
		}
	}
	r := report.New(d, snap, report.Options{
		Source: source, Name: o.name, Namespace: o.namespace, Mode: o.mode,
		Policy: &obs.policy, Observed: obs.points,
	})
	if err := r.Write(stdout, o.output); err != nil {
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
