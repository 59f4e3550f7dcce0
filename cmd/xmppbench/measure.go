package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// base is the tool's monotonic clock origin: every timestamp in a body
// and every latency is time since base, which Go measures on the
// monotonic clock.
var base = time.Now()

// now returns nanoseconds since base.
func now() int64 { return int64(time.Since(base)) }

// ToolUsage is the tool's own resource use over the run (getrusage), so a
// reader can tell whether the tool or the server was the limit: with
// GOMAXPROCS=1 a cpu_cores near 1.0 means the tool was saturated.
type ToolUsage struct {
	GOMAXPROCS int     `json:"gomaxprocs"`
	UserS      float64 `json:"cpu_user_s"`
	SysS       float64 `json:"cpu_sys_s"`
	Cores      float64 `json:"cpu_cores"` // (user+sys)/wall
	MaxRSSKiB  int64   `json:"max_rss_kib"`
}

type rusage struct {
	user, sys time.Duration
	maxRSS    int64
}

func getRusage() rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return rusage{}
	}
	return rusage{
		user:   time.Duration(ru.Utime.Nano()),
		sys:    time.Duration(ru.Stime.Nano()),
		maxRSS: int64(ru.Maxrss),
	}
}

func toolUsage(from, to rusage, wall time.Duration) ToolUsage {
	u, s := to.user-from.user, to.sys-from.sys
	return ToolUsage{
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		UserS:      u.Seconds(),
		SysS:       s.Seconds(),
		Cores:      round3((u + s).Seconds() / wall.Seconds()),
		MaxRSSKiB:  to.maxRSS,
	}
}

// procSample is what /proc says about the server process.
type procSample struct {
	cpu    time.Duration // utime+stime
	rssKiB int64
	ok     bool
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status.
func sampleProc(pid int) procSample {
	if pid <= 0 {
		return procSample{}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15.
	s := string(stat)
	rp := strings.LastIndexByte(s, ')')
	if rp < 0 {
		return procSample{}
	}
	f := strings.Fields(s[rp+1:])
	if len(f) < 13 {
		return procSample{}
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	out := procSample{cpu: time.Duration(ut+st) * time.Second / clockTicks, ok: true}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb := strings.Fields(v)
				if len(kb) > 0 {
					out.rssKiB, _ = strconv.ParseInt(kb[0], 10, 64)
				}
			}
		}
	}
	return out
}

// ServerUsage is the server process's CPU and memory over the measured
// part of the run, from /proc (only with --server-pid, on the same machine).
type ServerUsage struct {
	PID          int     `json:"pid"`
	CPUS         float64 `json:"cpu_s"`
	Cores        float64 `json:"cpu_cores"`
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	// CPUPerOpUs is server CPU per unit of work (delivered message, login,
	// presence delivery), in microseconds.
	CPUPerOpUs float64 `json:"cpu_per_op_us,omitempty"`
	// RSSPerConnKiB is (after-before)/connections, for idle.
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`
}

func serverUsage(pid int, from, to procSample, wall time.Duration) *ServerUsage {
	if !from.ok || !to.ok {
		return nil
	}
	cpu := to.cpu - from.cpu
	return &ServerUsage{
		PID:          pid,
		CPUS:         cpu.Seconds(),
		Cores:        round3(cpu.Seconds() / wall.Seconds()),
		RSSBeforeKiB: from.rssKiB,
		RSSAfterKiB:  to.rssKiB,
	}
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var out []float64
	for _, f := range strings.Fields(string(b))[:3] {
		v, _ := strconv.ParseFloat(f, 64)
		out = append(out, v)
	}
	return out
}

func round3(v float64) float64 {
	return float64(int64(v*1000+0.5)) / 1000
}

// Report is the JSON document of one run.
type Report struct {
	Scenario  string       `json:"scenario"`
	Started   time.Time    `json:"started"`
	Target    any          `json:"target"`
	Results   any          `json:"results"`
	Errors    []string     `json:"errors,omitempty"` // the first few
	Tool      ToolUsage    `json:"tool"`
	Server    *ServerUsage `json:"server,omitempty"`
	LoadAvg   []float64    `json:"load_avg_before"`
	LoadAfter []float64    `json:"load_avg_after"`
}

// write prints r as indented JSON.
func (r *Report) write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// errorLog keeps a count of errors and the first few messages.
type errorLog struct {
	n    atomic.Int64
	mu   chan struct{}
	list []string
}

func newErrorLog() *errorLog { return &errorLog{mu: make(chan struct{}, 1)} }

func (e *errorLog) add(err error) {
	if e.n.Add(1) > 10 {
		return
	}
	e.mu <- struct{}{}
	e.list = append(e.list, err.Error())
	<-e.mu
}

// summary is the first three errors, for a message.
func (e *errorLog) summary() string {
	l := e.first()
	if len(l) > 3 {
		l = append(l[:3], "...")
	}
	return strings.Join(l, "; ")
}

func (e *errorLog) first() []string {
	e.mu <- struct{}{}
	defer func() { <-e.mu }()
	return append([]string(nil), e.list...)
}

// progress prints line() on w every interval until ctx ends.
func progress(ctx context.Context, w io.Writer, interval time.Duration, line func() string) {
	if interval <= 0 {
		return
	}
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(w, "[%6.1fs] %s\n", time.Since(start).Seconds(), line())
		}
	}
}
