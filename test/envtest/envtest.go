// Package envtest starts a real kube-apiserver and etcd (controller-runtime's
// envtest) for flinkscale's integration tests, with the FlinkDeployment and
// FlinkSessionJob CRDs installed, and hands tests a client for it.
//
// # Binaries
//
// The control plane binaries are built from source by `make envtest-bins`
// into <repo>/bin/k8s (kube-apiserver and etcd). KUBEBUILDER_ASSETS, when set
// and holding both binaries, takes precedence. When neither place has them,
// Start skips the test with a message saying how to build them, unless CI=true:
// then it fails, so CI never passes by silently skipping.
//
// # The FlinkDeployment and FlinkSessionJob CRDs
//
// By default Start installs test/crds/flink.apache.org_flinkdeployments.yaml
// and test/crds/flink.apache.org_flinksessionjobs.yaml, flinkscale's own
// minimal CRDs. When the environment variable FLINKSCALE_FLINKDEPLOYMENT_CRD
// (FLINKSCALE_FLINKSESSIONJOB_CRD) names a readable file (CI points them at
// the Flink Kubernetes Operator's real CRDs), that file is installed instead;
// one that names an unreadable file is reported (t.Log) and ours is used.
// Both kinds are handled as unstructured objects: see FlinkDeploymentGVK,
// NewFlinkDeployment, FlinkSessionJobGVK and NewFlinkSessionJob.
//
// # Sharing and stopping
//
// A control plane takes seconds to start, so a package should share one
// between its tests. It does so by calling Main from its TestMain:
//
//	func TestMain(m *testing.M) { envtest.Main(m) }
//
// Then every Start in that test binary with the same options returns the same
// Env, started on first use, and Main stops it when the tests are done (or on
// SIGINT/SIGTERM). Tests sharing an Env isolate themselves by namespace
// (Env.CreateNamespace).
//
// Without Main, each Start gets its own control plane, stopped by t.Cleanup.
// Either way nothing relies on process exit to stop etcd and kube-apiserver:
// envtest starts them in their own process group, so they would outlive the
// test binary. (A test binary killed by `go test -timeout` runs no cleanup at
// all and can leave them behind; keep tests well inside their timeout.)
package envtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// EnvFlinkDeploymentCRD names a FlinkDeployment CRD file to install
	// instead of test/crds' own.
	EnvFlinkDeploymentCRD = "FLINKSCALE_FLINKDEPLOYMENT_CRD"
	// EnvFlinkSessionJobCRD names a FlinkSessionJob CRD file to install
	// instead of test/crds' own.
	EnvFlinkSessionJobCRD = "FLINKSCALE_FLINKSESSIONJOB_CRD"
	// EnvLog, when set to a number (0 = info, higher = more verbose), sends
	// controller-runtime's logs to stderr; otherwise they are discarded.
	EnvLog = "FLINKSCALE_TEST_LOG"

	modulePath = "github.com/flinkscale/flinkscale"
	// crdFile is our own FlinkDeployment CRD, relative to the repository root.
	crdFile = "test/crds/flink.apache.org_flinkdeployments.yaml"
	// sessionJobCRDFile is our own FlinkSessionJob CRD, likewise.
	sessionJobCRDFile = "test/crds/flink.apache.org_flinksessionjobs.yaml"
	// binDir holds kube-apiserver and etcd, relative to the repository root.
	binDir = "bin/k8s"
)

// FlinkDeploymentGVK is the FlinkDeployment kind the CRD installs.
var FlinkDeploymentGVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkDeployment"}

// NewFlinkDeployment returns an empty FlinkDeployment with its kind, namespace
// and name set, ready for spec fields (unstructured.SetNestedField) and Create.
func NewFlinkDeployment(namespace, name string) *unstructured.Unstructured {
	return newObject(FlinkDeploymentGVK, namespace, name)
}

// FlinkSessionJobGVK is the FlinkSessionJob kind the CRD installs.
var FlinkSessionJobGVK = schema.GroupVersionKind{Group: "flink.apache.org", Version: "v1beta1", Kind: "FlinkSessionJob"}

// NewFlinkSessionJob returns an empty FlinkSessionJob with its kind,
// namespace and name set, ready for spec fields (spec.deploymentName names
// its session cluster, a FlinkDeployment without spec.job) and Create.
func NewFlinkSessionJob(namespace, name string) *unstructured.Unstructured {
	return newObject(FlinkSessionJobGVK, namespace, name)
}

func newObject(gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// Option configures Start.
type Option func(*options)

type options struct {
	crdPaths     []string
	startTimeout time.Duration
}

// WithCRDPaths installs more CRDs: directories of YAML/JSON manifests or
// single files (e.g. flinkscale's own config/crd/bases). A missing path is an
// error.
func WithCRDPaths(paths ...string) Option {
	return func(o *options) { o.crdPaths = append(o.crdPaths, paths...) }
}

// WithStartTimeout bounds the whole start (etcd, kube-apiserver, CRDs).
// Default 3 minutes: generous for a 2-core machine busy compiling other
// packages; a healthy start takes a few seconds.
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Env is a running control plane.
type Env struct {
	// Config reaches the kube-apiserver as an admin (system:masters).
	Config *rest.Config
	// Client is a controller-runtime client; its Scheme has the core
	// Kubernetes types and apiextensions/v1. FlinkDeployments and
	// FlinkSessionJobs go through it as *unstructured.Unstructured
	// (FlinkDeploymentGVK, FlinkSessionJobGVK).
	Client client.Client
	Scheme *runtime.Scheme
	// FlinkDeploymentCRD and FlinkSessionJobCRD are the CRD files that were
	// installed.
	FlinkDeploymentCRD, FlinkSessionJobCRD string

	env    *crenvtest.Environment
	shared bool

	stopOnce sync.Once
	stopErr  error
}

// Stop stops the control plane. It is idempotent. A shared Env (see Main)
// ignores Stop: Main stops it after the last test.
func (e *Env) Stop() error {
	if e.shared {
		return nil
	}
	return e.stop()
}

func (e *Env) stop() error {
	e.stopOnce.Do(func() { e.stopErr = e.env.Stop() })
	return e.stopErr
}

// CreateNamespace creates a namespace named prefix-<random> and returns its
// name. It is deleted on t.Cleanup (envtest runs no namespace controller, so
// it only goes Terminating; its objects stay until the Env stops).
func (e *Env) CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("envtest: create namespace %s-*: %v", prefix, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("envtest: delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// Start returns a running control plane with the FlinkDeployment and
// FlinkSessionJob CRDs (and any WithCRDPaths) installed, skipping or failing t as the package comment
// describes when the binaries are missing. Under Main the Env is shared;
// otherwise it is stopped on t.Cleanup.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{startTimeout: 3 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}

	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	bins, missing := binaries(root)
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("envtest: %s; CI=true, so this fails instead of skipping (run `make envtest-bins` before the tests)", missing)
		}
		t.Skipf("envtest: %s; skipping (build them with `make envtest-bins`, about 4 minutes cold)", missing)
	}
	crds, notes := flinkCRDs(root)
	for _, note := range notes {
		t.Log("envtest: " + note)
	}
	paths := append(crds.paths(), o.crdPaths...)

	sharedMu.Lock()
	if !sharing {
		sharedMu.Unlock()
		setLoggerOnce.Do(setLogger)
		e, err := start(bins, paths, crds, o.startTimeout)
		if err != nil {
			t.Fatalf("envtest: %v", err)
		}
		t.Cleanup(func() {
			if err := e.stop(); err != nil {
				t.Logf("envtest: stop: %v", err)
			}
		})
		return e
	}
	defer sharedMu.Unlock()
	key := strings.Join(append([]string{bins}, paths...), "\x00")
	ent, ok := sharedEnvs[key]
	if !ok {
		// Start under the lock: tests that want the same Env wait for it.
		ent = &sharedEnv{}
		setLoggerOnce.Do(setLogger)
		ent.env, ent.err = start(bins, paths, crds, o.startTimeout)
		if ent.env != nil {
			ent.env.shared = true
		}
		sharedEnvs[key] = ent
	}
	if ent.err != nil {
		t.Fatalf("envtest: %v", ent.err)
	}
	return ent.env
}

// ErrNoBinaries is returned (wrapped) by StartControlPlane when
// kube-apiserver and etcd have not been built (`make envtest-bins`).
var ErrNoBinaries = errors.New("kube-apiserver and etcd not built")

// StartControlPlane starts a control plane outside tests (the demo, the
// fleet benchmark): the FlinkDeployment and FlinkSessionJob CRDs as Start
// picks them (our own, or the files FLINKSCALE_FLINKDEPLOYMENT_CRD and
// FLINKSCALE_FLINKSESSIONJOB_CRD name) and any WithCRDPaths. It
// leaves controller-runtime's logger alone (set it before), and the caller
// must Stop the Env: etcd and kube-apiserver run in their own process group
// and would outlive the process.
func StartControlPlane(opts ...Option) (*Env, error) {
	o := options{startTimeout: 3 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bins, missing := binaries(root)
	if missing != "" {
		return nil, fmt.Errorf("%w: %s (build them with `make envtest-bins`)", ErrNoBinaries, missing)
	}
	crds, _ := flinkCRDs(root)
	return start(bins, append(crds.paths(), o.crdPaths...), crds, o.startTimeout)
}

type sharedEnv struct {
	env *Env
	err error
}

var (
	sharedMu   sync.Mutex
	sharing    bool
	sharedEnvs = map[string]*sharedEnv{}
)

// Main runs a package's tests with shared control planes and exits with
// their code: call it from TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it enables sharing, runs m, stops every
// shared Env and returns m.Run's code (1 if stopping failed).
func Run(m *testing.M) int {
	sharedMu.Lock()
	sharing = true
	sharedMu.Unlock()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "envtest: %v: stopping control planes\n", s)
			_ = stopShared()
			os.Exit(1)
		case <-done:
		}
	}()

	code := m.Run()
	signal.Stop(sig)
	close(done)
	if err := stopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "envtest: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func stopShared() error {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	var errs []error
	for key, ent := range sharedEnvs {
		if ent.env != nil {
			errs = append(errs, ent.env.stop())
		}
		delete(sharedEnvs, key)
	}
	return errors.Join(errs...)
}

var setLoggerOnce sync.Once

// start brings up etcd and kube-apiserver from bins and installs the CRDs,
// within timeout overall.
func start(bins string, crdPaths []string, crds flinkCRDFiles, timeout time.Duration) (*Env, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// Each component may take up to half the budget; envtest retries a
	// failed control plane start itself, the overall bound below caps that.
	te := &crenvtest.Environment{
		Scheme:                   scheme,
		BinaryAssetsDirectory:    bins,
		ControlPlaneStartTimeout: timeout / 2,
		ControlPlaneStopTimeout:  30 * time.Second,
		CRDInstallOptions: crenvtest.CRDInstallOptions{
			Paths:              crdPaths,
			ErrorIfPathMissing: true,
			MaxTime:            timeout / 2,
		},
	}
	// Explicit paths: KUBEBUILDER_ASSETS or TEST_ASSET_* pointing elsewhere
	// (possibly at nothing) must not override the directory chosen here.
	te.ControlPlane.GetAPIServer().Path = filepath.Join(bins, "kube-apiserver")
	te.ControlPlane.Etcd = &crenvtest.Etcd{Path: filepath.Join(bins, "etcd")}

	type result struct {
		cfg *rest.Config
		err error
	}
	ch := make(chan result, 1)
	began := time.Now()
	go func() {
		cfg, err := te.Start()
		ch <- result{cfg, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-time.After(timeout):
		// Stop whatever comes up once Start gives up or finishes.
		go func() {
			<-ch
			_ = te.Stop()
		}()
		return nil, fmt.Errorf("control plane (%s) did not start within %v", bins, timeout)
	}
	if r.err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("start control plane from %s: %w", bins, r.err)
	}
	c, err := client.New(r.cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("client: %w", err)
	}
	ctrllog.Log.WithName("envtest").Info("control plane started", "took", time.Since(began), "crds", crdPaths)
	return &Env{Config: r.cfg, Client: c, Scheme: scheme,
		FlinkDeploymentCRD: crds.deployment, FlinkSessionJobCRD: crds.sessionJob, env: te}, nil
}

func setLogger() {
	v := os.Getenv(EnvLog)
	if v == "" {
		ctrllog.SetLogger(logr.Discard())
		return
	}
	verbosity := 0
	_, _ = fmt.Sscan(v, &verbosity)
	ctrllog.SetLogger(funcr.New(func(prefix, args string) {
		fmt.Fprintln(os.Stderr, prefix, args)
	}, funcr.Options{Verbosity: verbosity, LogTimestamp: true}))
}

// binaries returns the directory with kube-apiserver and etcd, or why none
// was found.
func binaries(root string) (dir, missing string) {
	var tried []string
	if kb := os.Getenv("KUBEBUILDER_ASSETS"); kb != "" {
		if hasBinaries(kb) {
			return kb, ""
		}
		tried = append(tried, kb+" (KUBEBUILDER_ASSETS)")
	}
	own := filepath.Join(root, binDir)
	if hasBinaries(own) {
		return own, ""
	}
	tried = append(tried, own)
	return "", "kube-apiserver and etcd not found in " + strings.Join(tried, " or ")
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// flinkCRDFiles are the Flink Kubernetes Operator CRD files to install.
type flinkCRDFiles struct{ deployment, sessionJob string }

func (f flinkCRDFiles) paths() []string { return []string{f.deployment, f.sessionJob} }

// flinkCRDs picks the FlinkDeployment and FlinkSessionJob CRD files, with a
// note for each environment variable that was set but unusable.
func flinkCRDs(root string) (flinkCRDFiles, []string) {
	var notes []string
	dep, note := flinkDeploymentCRD(root)
	if note != "" {
		notes = append(notes, note)
	}
	sj, note := flinkSessionJobCRD(root)
	if note != "" {
		notes = append(notes, note)
	}
	return flinkCRDFiles{deployment: dep, sessionJob: sj}, notes
}

// flinkDeploymentCRD picks the FlinkDeployment CRD file to install, with a
// note when FLINKSCALE_FLINKDEPLOYMENT_CRD was set but unusable.
func flinkDeploymentCRD(root string) (path, note string) {
	return pickCRD(EnvFlinkDeploymentCRD, filepath.Join(root, crdFile))
}

// flinkSessionJobCRD picks the FlinkSessionJob CRD file to install, with a
// note when FLINKSCALE_FLINKSESSIONJOB_CRD was set but unusable.
func flinkSessionJobCRD(root string) (path, note string) {
	return pickCRD(EnvFlinkSessionJobCRD, filepath.Join(root, sessionJobCRDFile))
}

// pickCRD returns the file the environment variable env names, or own when
// it is unset or names no readable file (then with a note saying so).
func pickCRD(env, own string) (path, note string) {
	p := os.Getenv(env)
	if p == "" {
		return own, ""
	}
	f, err := os.Open(p)
	if err != nil {
		return own, fmt.Sprintf("%s=%s is not readable (%v); using %s", env, p, err, own)
	}
	_ = f.Close()
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, ""
}

// RepoRoot finds the flinkscale repository root: the nearest directory at or
// above the working directory (a package directory under go test) whose
// go.mod declares the flinkscale module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	var firstGoMod string
	for d := dir; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil {
			if firstGoMod == "" {
				firstGoMod = d
			}
			if declaresModule(b, modulePath) {
				return d, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if firstGoMod != "" {
		return firstGoMod, nil
	}
	return "", fmt.Errorf("no go.mod at or above %s", dir)
}

func declaresModule(gomod []byte, path string) bool {
	for line := range bytes.Lines(gomod) {
		f := strings.Fields(string(line))
		if len(f) >= 2 && f[0] == "module" && slices.Contains([]string{path, `"` + path + `"`}, f[1]) {
			return true
		}
	}
	return false
}

// WriteKubeconfig writes a kubeconfig for the Env's admin user into a
// temporary directory of t and returns its path, for kubectl and for
// commands that take --kubeconfig.
func (e *Env) WriteKubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := e.WriteKubeconfigFile(path, "envtest"); err != nil {
		t.Fatalf("writing a kubeconfig: %v", err)
	}
	return path
}

// WriteKubeconfigFile writes a kubeconfig for the Env's admin user to path
// (mode 0600: it holds the admin's client key), with one cluster, user and
// context named name, the current context.
func (e *Env) WriteKubeconfigFile(path, name string) error {
	cfg := e.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[name+"-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name + "-admin"}
	kc.CurrentContext = name
	return clientcmd.WriteToFile(*kc, path)
}

// Kubectl is the kubectl `make envtest-bins` builds (from the same
// Kubernetes module as the API server), in $KUBEBUILDER_ASSETS or bin/k8s.
// Missing, it fails the test under CI=true and skips it elsewhere.
func Kubectl(t testing.TB) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		dirs = append(dirs, d)
	}
	if root, err := RepoRoot(); err == nil {
		dirs = append(dirs, filepath.Join(root, binDir))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "kubectl")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("kubectl not found in %v: run make envtest-bins", dirs)
	}
	t.Skipf("kubectl not found in %v: run make envtest-bins", dirs)
	return ""
}
