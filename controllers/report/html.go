package report

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct": func(x float64) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "–"
		}
		return fmt.Sprintf("%.0f %%", 100*x)
	},
	"rate": func(x float64) string {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "–"
		}
		return fmt.Sprintf("%.0f/s", x)
	},
	"records": func(x float64) string {
		switch {
		case math.IsNaN(x):
			return "–"
		case x >= 1e9:
			return fmt.Sprintf("%.2fG", x/1e9)
		case x >= 1e6:
			return fmt.Sprintf("%.2fM", x/1e6)
		case x >= 1e4:
			return fmt.Sprintf("%.1fk", x/1e3)
		}
		return fmt.Sprintf("%.0f", x)
	},
}).Parse(htmlSource))

// htmlChart is a chart as the template embeds it.
type htmlChart struct {
	Title, Caption string
	// Src is the SVG as a data: URL, so that the page needs no other file.
	Src template.URL
}

// WriteHTML writes the report as one self-contained HTML page: the key
// figures, the charts (SVG drawn with gonum/plot, embedded as data: URLs),
// the vertex table with each explanation, the resource plan, the reasons
// and the patch. It loads nothing from elsewhere: no scripts, fonts or
// style sheets.
func (r Report) WriteHTML(w io.Writer) error {
	charts, err := r.charts()
	if err != nil {
		return fmt.Errorf("drawing the charts: %w", err)
	}
	data := struct {
		R      Report
		Job    string
		At     string
		Charts []htmlChart
		// JobInSource: the source already names the job id.
		JobInSource bool
	}{R: r, Job: r.Job, At: r.At.UTC().Format(time.RFC3339), JobInSource: r.JobID != "" && strings.Contains(r.Source, r.JobID)}
	if data.Job == "" {
		data.Job = "job"
	}
	for _, c := range charts {
		data.Charts = append(data.Charts, htmlChart{
			Title: c.Title, Caption: c.Caption,
			// The SVG is our own rendering, not user input.
			Src: template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(c.SVG)), // #nosec G203
		})
	}
	return htmlTemplate.Execute(w, data)
}
