package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progressBar draws "[=====>    ] 12/55 step-up-3x/keda-lag" on one line.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	width int
	start time.Time
	drawn bool
}

func (b *progressBar) update(done, total int, what string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	n := 0
	if total > 0 {
		n = b.width * done / total
	}
	bar := strings.Repeat("=", n)
	if n < b.width {
		bar += ">" + strings.Repeat(" ", b.width-n-1)
	}
	fmt.Fprintf(b.w, "\r[%s] %d/%d %-40.40s %s", bar, done, total, what, time.Since(b.start).Round(time.Second))
	b.drawn = true
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}
