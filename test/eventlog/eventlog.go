// Package eventlog is an in-memory event recorder for tests and the demos:
// every event the controller or the fake operator records, kept to be
// counted and shown.
package eventlog

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Event is one event the controller or the fake operator recorded.
type Event struct {
	At           time.Time
	Kind, Name   string
	Type, Reason string
	Message      string
}

// Log is an event recorder (record.EventRecorder) that keeps every
// event in memory, for the tests and the demo's live view.
type Log struct {
	mu     sync.Mutex
	events []Event
}

func (l *Log) add(obj runtime.Object, typ, reason, msg string) {
	e := Event{At: time.Now(), Type: typ, Reason: reason, Message: msg}
	if obj != nil {
		e.Kind = obj.GetObjectKind().GroupVersionKind().Kind
		if e.Kind == "" {
			// Typed objects read through a client carry no TypeMeta.
			t := fmt.Sprintf("%T", obj)
			e.Kind = t[strings.LastIndex(t, ".")+1:]
		}
		if m, err := meta.Accessor(obj); err == nil {
			e.Name = m.GetName()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// Event records an event.
func (l *Log) Event(obj runtime.Object, typ, reason, msg string) { l.add(obj, typ, reason, msg) }

// Eventf records an event with a formatted message.
func (l *Log) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	l.add(obj, typ, reason, fmt.Sprintf(format, args...))
}

// AnnotatedEventf records an event; the annotations are dropped.
func (l *Log) AnnotatedEventf(obj runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	l.add(obj, typ, reason, fmt.Sprintf(format, args...))
}

// Events are the events recorded so far, oldest first.
func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Count is how many events of reason were recorded on objects of kind
// (any kind when kind is "").
func (l *Log) Count(kind, reason string) int {
	n := 0
	for _, e := range l.Events() {
		if e.Reason == reason && (kind == "" || e.Kind == kind) {
			n++
		}
	}
	return n
}

// String lists every event, one a line.
func (l *Log) String() string {
	var b strings.Builder
	for _, e := range l.Events() {
		fmt.Fprintf(&b, "%s %s/%s %s %s: %s\n", e.At.Format("15:04:05.000"), e.Kind, e.Name, e.Type, e.Reason, e.Message)
	}
	return b.String()
}
