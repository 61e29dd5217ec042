package promreporter

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"

	"github.com/flinkscale/flinkscale/test/sim"
)

// Handler serves one process's exposition as the reporter's endpoint
// (metrics.reporter.prom.port, 9249 by default) does: simpleclient 0.8.1's
// HTTPServer answers every path and method with the whole registry,
// Content-Type text/plain; version=0.0.4; charset=utf-8, keeps only the
// families named by repeated name[] query parameters when there are any,
// and gzips the body when the request accepts gzip.
//
// process is JobManagerProcess ("jobmanager") or a TaskManager id. A
// TaskManager the View no longer has (lost, or not started yet) answers 503:
// a scrape of a process that is not there fails. get is called once per
// request.
func Handler(get func() sim.View, process string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := get()
		var e *exposition
		if process == JobManagerProcess {
			e = jobManagerExposition(v)
		} else {
			if !runsOn(v, process) {
				http.Error(w, "TaskManager "+process+" is not running", http.StatusServiceUnavailable)
				return
			}
			e = taskManagerExposition(v, process)
		}
		var body bytes.Buffer
		e.write(&body, r.URL.Query()["name[]"])

		h := w.Header()
		h.Set("Content-Type", ContentType)
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			_, _ = gz.Write(body.Bytes())
			_ = gz.Close()
			return
		}
		h.Set("Content-Length", strconv.Itoa(body.Len()))
		_, _ = w.Write(body.Bytes())
	})
}

// acceptsGzip mirrors simpleclient's shouldUseCompression: one of the
// comma-separated Accept-Encoding tokens, trimmed, is "gzip" in any case
// (a token with parameters, "gzip;q=1", does not count).
func acceptsGzip(headers []string) bool {
	for _, h := range headers {
		for _, tok := range strings.Split(h, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "gzip") {
				return true
			}
		}
	}
	return false
}
