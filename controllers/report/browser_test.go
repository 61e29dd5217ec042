package report

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flinkscale/flinkscale/scaling"
)

// chromium finds a headless-capable Chromium: $FLINKSCALE_CHROMIUM, else
// Debian's chromium on PATH. CI installs it (.ci/run) and fails without
// it; elsewhere the test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLINKSCALE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found: .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium not found (apt-get install chromium), or set FLINKSCALE_CHROMIUM")
	return ""
}

// screenshot renders page in headless Chromium at width × height CSS
// pixels and decodes the PNG.
func screenshot(t *testing.T, page []byte, width, height int) image.Image {
	t.Helper()
	bin := chromium(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.png")
	require.NoError(t, os.WriteFile(in, page, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--hide-scrollbars", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--screenshot="+out, "file://"+in)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	f, err := os.Open(out)
	require.NoError(t, err, "chromium wrote no screenshot: %s", stderr.String())
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	if dst := os.Getenv("FLINKSCALE_SCREENSHOT_DIR"); dst != "" {
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, t.Name()+".png"), b, 0o644))
	}
	return img
}

// near counts the pixels within a small distance of c (antialiasing moves
// edges, not the inside of a bar).
func near(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-int(c.R)) <= 6 && abs(int(g>>8)-int(c.G)) <= 6 && abs(int(bl>>8)-int(c.B)) <= 6 {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// The HTML report, rendered by a real browser, is not blank: its text and
// its charts are drawn. The charts' own colors (the recommendation's blue
// bars, the orange target rates, the green utilization band, the lag
// chart's shaded restart) can only come from the embedded SVGs having been
// decoded and painted.
func TestHTMLReportRendersInChromium(t *testing.T) {
	s, d := example(t, "orders-surge.json")
	pol := scaling.DefaultPolicy()
	var b bytes.Buffer
	require.NoError(t, New(d, s, Options{Source: "snapshot orders-surge.json", Policy: &pol}).WriteHTML(&b))
	img := screenshot(t, b.Bytes(), 1280, 2400)
	bounds := img.Bounds()
	require.Equal(t, 1280, bounds.Dx())

	total := bounds.Dx() * bounds.Dy()
	white := near(img, color.RGBA{R: 255, G: 255, B: 255})
	assert.Less(t, float64(white)/float64(total), 0.97, "not blank: %d of %d pixels are white", white, total)
	colors := map[color.Color]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 3 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 3 {
			colors[img.At(x, y)] = true
		}
	}
	assert.Greater(t, len(colors), 50, "text and charts, not a flat fill")

	// Minimum pixel counts: with the charts painted, about 12 000 blue,
	// 2 000 orange, 6 000 green and 9 000 shading pixels; with broken
	// images only the blue Scale badge's ~1 100 and a few stray ones.
	for _, c := range []struct {
		name string
		c    color.RGBA
		min  int
	}{
		{"recommended bars (blue)", afterColor, 5000},
		{"target-rate bars (orange)", loadColor, 1000},
		{"utilization band (green)", bandColor, 2000},
		{"restart shading (blue)", color.RGBA{R: 222, G: 234, B: 246, A: 255}, 2000},
	} {
		n := near(img, c.c)
		t.Logf("%s: %d px", c.name, n)
		assert.Greater(t, n, c.min, c.name)
	}
}
