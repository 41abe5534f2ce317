package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("100000, 10000,1_000_000,10000")
	if err != nil || !slices.Equal(got, []int{10000, 100000, 1000000}) {
		t.Fatalf("parseSizes = %v, %v", got, err)
	}
	for _, bad := range []string{"", "10k", "0", "-5"} {
		if _, err := parseSizes(bad); err == nil || !strings.Contains(err.Error(), "key count") {
			t.Errorf("parseSizes(%q) = %v, want an error naming a key count", bad, err)
		}
	}
}

// fakeScale is a report of two sizes on one backend whose throughput fell to ratio.
func fakeScale(ratio float64) *scaleReport {
	res := func(keys int, rps float64, rss int64, sqlShare float64) scaleResult {
		return scaleResult{Backend: "SQLite", Keys: keys, Seed: throughput{Count: keys, Workers: 16, Elapsed: time.Second},
			CacheSize: keys * 2, Startup: []time.Duration{20 * time.Millisecond}, Sweep: throughput{Count: keys, Elapsed: time.Second},
			Runs: []loadResult{{PerSec: rps, P99: 5 * time.Millisecond}}, Hits: 99, Misses: 1, RSS: []int64{rss}, HWM: []int64{rss},
			Listed: min(keys, scaleBigKeys), ListTime: time.Second, DBSize: int64(keys) * 700,
			Profile: []profileShare{{"SQLite (modernc, pure Go)", sqlShare}, {"net/http and I/O", 20}}}
	}
	return &scaleReport{Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Command: "make bench-scale", Cores: 2, Go: "go", Sizes: []int{10000, 1000000},
		Results: []scaleResult{res(10000, 20000, 40<<20, 5), res(1000000, 20000*ratio, 40<<20+1000000*300, 5/ratio)}, Duration: 5 * time.Second, Conns: 64, Workers: 16, Dir: "/tmp"}
}

func TestScaleMarkdownTargets(t *testing.T) {
	met := fakeScale(0.95).markdown()
	for _, want := range []string{"| SQLite | 1M |", "RSS grows ~303 bytes per key", "start-up O(1)", "is 0.95 of the 10k figure (target ≥ 0.9: met)"} {
		if !strings.Contains(met, want) {
			t.Errorf("report lacks %q:\n%s", want, met)
		}
	}
	missed := fakeScale(0.5).markdown()
	for _, want := range []string{"(target ≥ 0.9: **missed**). **Missed: 10000 requests/s at 1M against 20000 at 10k.**", "SQLite (modernc, pure Go) 5.0% → 10.0%"} {
		if !strings.Contains(missed, want) {
			t.Errorf("report lacks %q:\n%s", want, missed)
		}
	}
}

func TestScaleSectionInReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scale.md")
	var b strings.Builder
	w := func(format string, args ...any) {
		b.WriteString(strings.TrimSuffix(fmt.Sprintf(format, args...), "\n") + "\n")
	}
	scaleMarkdown(w, path)
	if !strings.Contains(b.String(), "run `make bench-scale`") {
		t.Errorf("without %s the report should say how to make it:\n%s", path, b.String())
	}

	rep := fakeScale(1)
	if err := os.WriteFile(path, []byte(rep.markdown()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rep.plot(filepath.Join(dir, "scale.svg")); err != nil {
		t.Fatal(err)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "scale.svg")); err != nil || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("scale.svg is not an SVG (%v): %.100s", err, svg)
	}
	b.Reset()
	scaleMarkdown(w, path)
	got := b.String()
	slashed := filepath.ToSlash(dir)
	for _, want := range []string{"## Scale", "produced 2026-01-02T03:04:05Z by `make bench-scale`", "| SQLite | 10k |", "](" + slashed + "/scale.svg)"} {
		if !strings.Contains(got, want) {
			t.Errorf("embedded section lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, scaleStamp) || strings.Contains(got, "](scale.svg)") {
		t.Errorf("embedded section keeps the stamp or a link relative to %s:\n%s", dir, got)
	}
}
