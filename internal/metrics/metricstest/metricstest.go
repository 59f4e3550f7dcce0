// Package metricstest reads a process's /metrics in tests: it scrapes the
// Prometheus text format and looks series up by name and labels.
package metricstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sample is one series of a scrape: its name, labels and value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Samples is a scrape.
type Samples []Sample

// Scrape gets url (a /metrics endpoint) and parses the text format.
func Scrape(ctx context.Context, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text exposition format: comment lines are
// skipped, every other line is a series.
func Parse(r io.Reader) (Samples, error) {
	var out Samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLine(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	rest := line
	if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
		s.Name = line[:i]
		rest = line[i+1:]
		for {
			rest = strings.TrimLeft(rest, ", ")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad label list")
			}
			key := rest[:eq]
			v, n, err := unquote(rest[eq+1:])
			if err != nil {
				return s, err
			}
			s.Labels[key] = v
			rest = rest[eq+1+n:]
		}
	} else {
		sp := strings.IndexByte(line, ' ')
		if sp < 0 {
			return s, fmt.Errorf("no value")
		}
		s.Name, rest = line[:sp], line[sp:]
	}
	if s.Name == "" {
		return s, fmt.Errorf("no metric name")
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, err
	}
	s.Value = v
	return s, nil
}

// unquote reads a double-quoted label value at the start of s and returns
// it and the bytes it took.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("bad escape")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated label value")
}

// Sum adds the values of every series called name whose labels include
// the pairs of kv (key, value, key, value...); ok is false when there is
// none.
func (ss Samples) Sum(name string, kv ...string) (sum float64, ok bool) {
outer:
	for _, s := range ss {
		if s.Name != name {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if s.Labels[kv[i]] != kv[i+1] {
				continue outer
			}
		}
		sum += s.Value
		ok = true
	}
	return sum, ok
}

// Names lists the distinct series names, sorted.
func (ss Samples) Names() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Want is one expectation of a scrape: the series called Name with the
// labels of KV exist and, unless AnyValue, sum to more than zero.
type Want struct {
	Name     string
	KV       []string
	AnyValue bool
}

// Positive wants the series to sum to more than zero.
func Positive(name string, kv ...string) Want { return Want{Name: name, KV: kv} }

// Present wants the series to exist, whatever their value.
func Present(name string, kv ...string) Want { return Want{Name: name, KV: kv, AnyValue: true} }

// Check returns an error naming the first of wants not met, or nil.
func (ss Samples) Check(wants ...Want) error {
	for _, w := range wants {
		v, ok := ss.Sum(w.Name, w.KV...)
		if !ok {
			return fmt.Errorf("no series %s%v", w.Name, w.KV)
		}
		if v <= 0 && !w.AnyValue {
			return fmt.Errorf("%s%v is %v, want > 0", w.Name, w.KV, v)
		}
	}
	return nil
}

// WaitFor scrapes url until every want holds (counters are updated a
// moment after what they count is visible to a client) or timeout passes,
// then fails the test naming what is missing. It returns the last scrape.
func WaitFor(t testing.TB, url string, timeout time.Duration, wants ...Want) Samples {
	t.Helper()
	return WaitForAll(t, []string{url}, timeout, wants...)
}

// WaitForAll is WaitFor over several processes of one kind (the routers
// of a cluster): each want holds for the series of every url together.
func WaitForAll(t testing.TB, urls []string, timeout time.Duration, wants ...Want) Samples {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		var all Samples
		var err error
		for _, url := range urls {
			var ss Samples
			if ss, err = Scrape(ctx, url); err != nil {
				break
			}
			all = append(all, ss...)
		}
		if err == nil {
			if err = all.Check(wants...); err == nil {
				return all
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("scraping %v: %v", urls, err)
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
