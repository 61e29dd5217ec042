package flink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Transport is an http.RoundTripper for the REST APIs of many JobManagers:
// a controller that polls thousands of Flink clusters, each of them every
// 30 s with a dozen small GETs.
//
// net/http's Transport is made for a few hosts: each connection it keeps
// has a reading and a writing goroutine, so a request is handed from the
// caller to one and its response back from the other, and every idle
// connection holds two goroutine stacks and two 4 KB buffers (about 36 KB
// at 1,000 JobManagers of make bench-scale). A pool of 4,000 idle
// connections (four per JobManager) is then too dear to keep, and a poll
// dials most of its connections anew.
//
// Transport sends a plain-HTTP GET itself, on the caller's goroutine: it
// writes the request on a kept-alive connection, and reads the answer with
// http.ReadResponse from a pooled buffer. An idle connection is a socket
// and nothing more. Everything else (another method, a body, https, a
// proxy) goes to Fallback. A GET that fails on a reused connection before
// any byte of an answer (the JobManager closed it, or restarted) is sent
// again on another connection: GETs are idempotent.
//
// A connection goes back to the pool only when its answer was read to the
// end, its framing was known (Content-Length or chunked), the server did
// not ask to close it, and the request's context did not end meanwhile.
type Transport struct {
	// Fallback carries what Transport does not send itself. Required.
	Fallback http.RoundTripper
	// Proxy is the proxy function of Fallback (nil: no proxy): a request
	// it names a proxy for goes to Fallback.
	Proxy func(*http.Request) (*url.URL, error)
	// DialContext opens a connection (nil: a net.Dialer with a 30 s
	// timeout and 30 s TCP keep-alives).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxIdlePerHost bounds the idle connections kept per host:port
	// (≤ 0: 1). A caller that has n requests in flight to a JobManager
	// at once reuses n connections when this is n.
	MaxIdlePerHost int
	// MaxIdle bounds the idle connections kept in all (≤ 0: no bound
	// but MaxIdlePerHost per host). Beyond it a connection is closed
	// after its answer.
	MaxIdle int
	// IdleTimeout closes a connection idle this long (≤ 0: 90 s).
	IdleTimeout time.Duration

	now func() time.Time // tests

	mu        sync.Mutex
	idle      map[string][]idleConn // host:port → most recently used last
	nIdle     int
	lastSweep time.Time
}

type idleConn struct {
	c  net.Conn
	at time.Time // back in the pool
}

// DefaultIdleTimeout is Transport's IdleTimeout unless set.
const DefaultIdleTimeout = 90 * time.Second

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// errSentNothing marks an exchange that failed before any byte of an
// answer arrived (the request may be sent again).
type errSentNothing struct{ err error }

func (e errSentNothing) Error() string { return e.err.Error() }
func (e errSentNothing) Unwrap() error { return e.err }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.sendsItself(req) {
		return t.Fallback.RoundTrip(req)
	}
	hb := heads.Get().(*[]byte)
	defer heads.Put(hb)
	head, err := requestHead((*hb)[:0], req)
	if err != nil {
		return nil, err
	}
	*hb = head
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	ctx := req.Context()
	// Reused connections may have been closed by the server meanwhile:
	// try each kept one, then a new one.
	for {
		c, reused := t.get(addr)
		if !reused {
			if c, err = t.dial(ctx, addr); err != nil {
				return nil, ctxErr(ctx, err)
			}
		}
		resp, err := t.exchange(req, addr, c, head)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		var early errSentNothing
		if err = ctxErr(ctx, err); !reused || !errors.As(err, &early) || ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, err
		}
	}
}

// ctxErr is err, or, when ctx ended (or its deadline, set on the
// connection, passed just now), ctx's error with err.
func ctxErr(ctx context.Context, err error) error {
	if e := ctx.Err(); e != nil {
		return fmt.Errorf("%w (%w)", e, err)
	}
	if dl, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// sendsItself reports whether req is a GET without a body over plain HTTP
// that no proxy carries.
func (t *Transport) sendsItself(req *http.Request) bool {
	if req.Method != http.MethodGet || req.URL == nil || req.URL.Scheme != "http" || req.URL.Host == "" ||
		(req.Body != nil && req.Body != http.NoBody) || req.Close {
		return false
	}
	if t.Proxy != nil {
		if p, err := t.Proxy(req); err != nil || p != nil {
			return false
		}
	}
	return true
}

// heads hold requests' heads while they are sent.
var heads = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// requestHead appends req's request line and header to b, as one write.
func requestHead(b []byte, req *http.Request) ([]byte, error) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	b = append(b, "GET "...)
	b = append(b, req.URL.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if _, ok := req.Header["User-Agent"]; !ok {
		b = append(b, "User-Agent: flinkscale\r\n"...)
	}
	for k, vs := range req.Header {
		if k == "Host" {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(k, "\r\n: ") || strings.ContainsAny(v, "\r\n") {
				return nil, fmt.Errorf("flink: header %q: invalid name or value", k)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	return append(b, "\r\n"...), nil
}

func (t *Transport) dial(ctx context.Context, addr string) (net.Conn, error) {
	if t.DialContext != nil {
		return t.DialContext(ctx, "tcp", addr)
	}
	d := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, "tcp", addr)
}

// aLongTimeAgo is a deadline that ends every pending read and write.
var aLongTimeAgo = time.Unix(1, 0)

// exchange writes head on c and reads the answer's status and header; the
// body is read by the caller (body).
func (t *Transport) exchange(req *http.Request, addr string, c net.Conn, head []byte) (*http.Response, error) {
	ctx := req.Context()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	if _, err := c.Write(head); err != nil {
		stop()
		return nil, errSentNothing{err}
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	release := func() {
		br.Reset(nil)
		readers.Put(br)
	}
	if _, err := br.Peek(1); err != nil {
		stop()
		release()
		return nil, errSentNothing{err}
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		stop()
		release()
		return nil, err
	}
	framed := resp.ContentLength >= 0 || (len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked")
	resp.Body = &body{ctx: ctx, rc: resp.Body, t: t, addr: addr, c: c, br: br, stop: stop,
		keep: !resp.Close && resp.ProtoAtLeast(1, 1) && framed}
	return resp, nil
}

// body is an answer's body: at its end the connection goes back to the
// pool (or is closed), and the buffer to its pool.
type body struct {
	ctx  context.Context
	rc   io.ReadCloser
	t    *Transport
	addr string
	c    net.Conn
	br   *bufio.Reader
	stop func() bool
	keep bool

	mu    sync.Mutex
	done  bool
	ended bool // done by reading to the end
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return 0, io.EOF
	}
	if b.done {
		return 0, errors.New("flink: read on a closed response body")
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
		b.ended = true
	case err != nil:
		b.finish(false)
		err = ctxErr(b.ctx, err)
	}
	return n, err
}

// Close closes the body; one not read to its end takes its connection
// with it.
func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish releases the connection (to the pool when read to the end and
// reusable) and the buffer. b.mu is held.
func (b *body) finish(atEnd bool) {
	b.done = true
	inTime := b.stop() // false: the context ended, the deadline is past
	if atEnd && b.keep && inTime && b.br.Buffered() == 0 && b.c.SetDeadline(time.Time{}) == nil {
		b.t.put(b.addr, b.c)
	} else {
		_ = b.c.Close()
	}
	b.br.Reset(nil)
	readers.Put(b.br)
	b.br = nil
}

func (t *Transport) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

func (t *Transport) idleTimeout() time.Duration {
	if t.IdleTimeout > 0 {
		return t.IdleTimeout
	}
	return DefaultIdleTimeout
}

// get takes the most recently used idle connection to addr that has not
// been idle too long.
func (t *Transport) get(addr string) (net.Conn, bool) {
	now := t.clock()
	var stale []net.Conn
	defer func() {
		for _, c := range stale {
			_ = c.Close()
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.idle[addr]
	for len(l) > 0 {
		ic := l[len(l)-1]
		l = l[:len(l)-1]
		t.nIdle--
		if now.Sub(ic.at) < t.idleTimeout() {
			if len(l) == 0 {
				delete(t.idle, addr)
			} else {
				t.idle[addr] = l
			}
			return ic.c, true
		}
		stale = append(stale, ic.c)
	}
	delete(t.idle, addr)
	return nil, false
}

// put keeps c idle for addr, within the bounds; at most once an idle
// timeout, it closes every connection idle longer than that (JobManagers
// no longer polled).
func (t *Transport) put(addr string, c net.Conn) {
	now := t.clock()
	var closing []net.Conn
	t.mu.Lock()
	if t.idle == nil {
		t.idle = map[string][]idleConn{}
		t.lastSweep = now
	}
	l := t.idle[addr]
	if len(l) >= max(t.MaxIdlePerHost, 1) || (t.MaxIdle > 0 && t.nIdle >= t.MaxIdle) {
		closing = append(closing, c)
	} else {
		t.idle[addr] = append(l, idleConn{c: c, at: now})
		t.nIdle++
	}
	if to := t.idleTimeout(); now.Sub(t.lastSweep) >= to {
		t.lastSweep = now
		for a, l := range t.idle {
			kept := l[:0]
			for _, ic := range l {
				if now.Sub(ic.at) < to {
					kept = append(kept, ic)
				} else {
					closing = append(closing, ic.c)
					t.nIdle--
				}
			}
			if len(kept) == 0 {
				delete(t.idle, a)
			} else {
				clear(l[len(kept):])
				t.idle[a] = kept
			}
		}
	}
	t.mu.Unlock()
	for _, c := range closing {
		_ = c.Close()
	}
}

// Idle is the number of idle connections kept.
func (t *Transport) Idle() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nIdle
}

// CloseIdleConnections closes the idle connections, Transport's and
// Fallback's (http.Client.CloseIdleConnections calls it).
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.nIdle = nil, 0
	t.mu.Unlock()
	for _, l := range idle {
		for _, ic := range l {
			_ = ic.c.Close()
		}
	}
	if ci, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
