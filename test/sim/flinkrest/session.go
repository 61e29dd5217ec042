package flinkrest

import (
	"net/http"
	"slices"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// NewSessionHandler serves the REST API of a session cluster: one
// JobManager running the jobs of clusters, which share their TaskManagers
// (sim.Jobs on one sim.Pool; sim.Session.Clusters lists them). /jobs and
// /jobs/overview list every job; /jobs/:jobid/... goes to the cluster
// running that job (an unknown id gets Flink's 404); /overview shows the
// shared TaskManagers once and counts every job, /jobmanager/metrics too;
// the other cluster-wide routes (/taskmanagers..., /jobmanager/config,
// /config) are the first cluster's, whose view shows the shared
// TaskManagers and, per slot, the job holding it. Each cluster keeps its
// own MetricStore; opts configure each. It panics without a cluster.
func NewSessionHandler(clusters []sim.Cluster, opts ...Option) http.Handler {
	if len(clusters) == 0 {
		panic("flinkrest: a session cluster needs a job")
	}
	s := &sessionHandler{}
	for _, c := range clusters {
		s.jobs = append(s.jobs, NewHandler(c, opts...).(*handler))
	}
	return s
}

type sessionHandler struct {
	jobs []*handler // the first one serves the cluster-wide routes
}

func (s *sessionHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	write(w, s.serve(r))
}

func (s *sessionHandler) serve(r *http.Request) response {
	tokens, valid := routeTokens(r)
	if !valid {
		return notFound(r)
	}
	first := s.jobs[0]
	if r.Method == http.MethodGet {
		switch {
		case slices.Equal(tokens, []string{"overview"}):
			views := s.views()
			return ok(overviewOf(views[0], views))
		case slices.Equal(tokens, []string{"jobs"}):
			return ok(jobIDsOf(s.views()))
		case slices.Equal(tokens, []string{"jobs", "overview"}):
			views := s.views()
			return ok(jobsOverviewOf(views, parseVersion(views[0].FlinkVersion)))
		case slices.Equal(tokens, []string{"jobmanager", "metrics"}):
			return s.jobManagerMetrics(r)
		}
	}
	if len(tokens) >= 2 && tokens[0] == "jobs" && tokens[1] != "overview" {
		for _, h := range s.jobs {
			if id := h.live().Job.ID; id != "" && strings.EqualFold(id, tokens[1]) {
				return h.serve(r)
			}
		}
		// No job has it: the first cluster answers as Flink does for an
		// unknown (or malformed) job id.
	}
	return first.serve(r)
}

// views is every job's live view, the first cluster's first.
func (s *sessionHandler) views() []sim.View {
	out := make([]sim.View, len(s.jobs))
	for i, h := range s.jobs {
		out[i] = h.live()
	}
	return out
}

// jobManagerMetrics is the first cluster's JobManager metrics (its
// MetricStore's TaskManagers are the shared ones) with every job counted in
// numRunningJobs.
func (s *sessionHandler) jobManagerMetrics(r *http.Request) response {
	req := s.jobs[0].request(r, map[string]string{})
	st := req.metricStore()
	if st == nil {
		return metricsResponse(req, nil)
	}
	store := jobManagerStore(*st)
	store.integer("numRunningJobs", runningJobs(s.views()))
	return metricsResponse(req, store)
}
