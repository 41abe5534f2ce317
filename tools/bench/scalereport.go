package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// scaleStamp starts scale.md: the main report reads the date from it.
const scaleStamp = "<!-- keymint bench-scale, produced "

// scaleTarget: verify throughput at the largest size against the smallest's, same backend.
const scaleTarget = 0.9

func keysLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// backends lists the backends in the order they ran, with their results by size.
func (r *scaleReport) backends() (names []string, by map[string][]scaleResult) {
	by = map[string][]scaleResult{}
	for _, s := range r.Results {
		if _, ok := by[s.Backend]; !ok {
			names = append(names, s.Backend)
		}
		by[s.Backend] = append(by[s.Backend], s)
	}
	return names, by
}

func durationText(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", ms(d))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func (r *scaleReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("%s%s -->", scaleStamp, r.Started.Format(time.RFC3339))
	w("## Scale: verify, memory and start-up against the number of keys")
	w("")
	w("Produced by `%s` on %s, in %s: %d cores, %s. The load generator shares the machine's cores with the server.",
		r.Command, r.Started.Format("2006-01-02 15:04 UTC"), r.Elapsed, r.Cores, r.Go)
	w("")
	w("Each backend grows one database through the sizes. Keys are created through the service (`internal/service` over the store the server then opens: validation, a new secret and its SHA-256, one transaction per key), %d at a time, as the API's create makes them without HTTP: the first %d in app `%s`, the rest round robin over %d apps. The databases live in %s%s. At each size a fresh `keymint serve` starts on the database (PostgreSQL: two replicas on one throwaway PostgreSQL, `fsync` on) with `--verify-cache-size` set to hold every key (the column below). Start-up is from exec to the first `GET /readyz` 200. The cold sweep verifies every key once on each server (its cache fills); then the verify load: %d connections (split between the replicas), keys drawn uniformly from the whole set, all `VALID`, through a verify-scoped credential, %s per run after a 1 s warm-up, median of %d runs [min–max]. The hit ratio counts the verify cache's lookups (`keymint_verify_cache_lookups_total`: the credential's and the key's, two per verify) during those runs; RSS is the server's VmRSS after them (PostgreSQL: the mean of the two replicas). List-keys pages through app `%s` with the SDK (`ListKeys`, 1,000 a page). The database size is SQLite's file and write-ahead log, or PostgreSQL's `pg_database_size`.",
		r.Workers, scaleBigKeys, scaleBigApp, scaleApps, r.Dir, tmpfsNote(r.Dir), r.Conns, r.Duration, *runs, scaleBigApp)
	w("")
	if r.PGMax > 0 && slices.Max(r.Sizes) > r.PGMax {
		w("**PostgreSQL ran up to %s keys only** (`-scale-pg-max %d`): seeding %s keys through it, at the rate below, did not fit the run's time budget on this machine.", keysLabel(r.PGMax), r.PGMax, keysLabel(slices.Max(r.Sizes)))
		w("")
	}
	w("| backend | keys | seeding, keys/s | `--verify-cache-size` | start-up to ready | cold sweep, verifies/s | verify requests/s | p99 | cache hit ratio | RSS after the load | list-keys of `%s` | database size |", scaleBigApp)
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.Results {
		w("| %s | %s | %.0f (%d in %s) | %d | %s | %.0f | %s | %s | %.4f | %s | %d keys in %s | %s |", s.Backend, keysLabel(s.Keys),
			s.Seed.perSec(), s.Seed.Count, durationText(s.Seed.Elapsed), s.CacheSize, durationText(s.maxStartup()), s.Sweep.perSec(),
			s.rps().format("", 0), s.p99().format(" ms", 2), s.hitRatio(), mib(s.meanRSS()), s.Listed, durationText(s.ListTime), mib(s.DBSize))
	}
	w("")
	w("![verify throughput and RSS against keys](scale.svg)")
	w("")
	names, by := r.backends()
	var targets []string
	w("### Growth")
	w("")
	for _, name := range names {
		rs := by[name]
		if len(rs) < 2 {
			continue
		}
		first, last := rs[0], rs[len(rs)-1]
		dk := float64(last.Keys - first.Keys)
		ratio := last.rps().med / first.rps().med
		w("**%s, %s → %s keys** (×%.0f):", name, keysLabel(first.Keys), keysLabel(last.Keys), float64(last.Keys)/float64(first.Keys))
		w("")
		w("- verify throughput ×%.2f, p99 ×%.2f; cold sweep ×%.2f", ratio, last.p99().med/first.p99().med, last.Sweep.perSec()/first.Sweep.perSec())
		w("- RSS grows ~%.0f bytes per key (%s → %s), a cache of every key included", float64(last.meanRSS()-first.meanRSS())/dk, mib(first.meanRSS()), mib(last.meanRSS()))
		w("- start-up %s", growth(first.maxStartup(), last.maxStartup(), dk))
		w("- database ~%.0f bytes per key (%s → %s)", float64(last.DBSize-first.DBSize)/dk, mib(first.DBSize), mib(last.DBSize))
		w("- seeding %.0f → %.0f keys/s", first.Seed.perSec(), last.Seed.perSec())
		var list []string
		for _, s := range rs {
			list = append(list, fmt.Sprintf("%.1f ms per 1,000 keys at %s (%d keys)", ms(s.ListTime)/float64(s.Listed)*1000, keysLabel(s.Keys), s.Listed))
		}
		w("- list-keys paging: %s", strings.Join(list, ", "))
		w("")
		t := fmt.Sprintf("- %s: verify throughput at %s keys is %.2f of the %s figure (target ≥ %.1f: %s)", name, keysLabel(last.Keys), ratio, keysLabel(first.Keys), scaleTarget, verdict(ratio >= scaleTarget))
		if ratio < scaleTarget {
			t += fmt.Sprintf(". **Missed: %.0f requests/s at %s against %.0f at %s.** %s", last.rps().med, keysLabel(last.Keys), first.rps().med, keysLabel(first.Keys), profileDiff(first, last))
		}
		targets = append(targets, t)
	}
	if len(targets) > 0 {
		writeTargets(w, targets)
	}
	w("### Where the server's CPU goes, by size")
	w("")
	w("CPU profile of the (first) server during the first verify run at each size, through `--debug-addr`:")
	w("")
	header, rule := "| where |", "|---|"
	for _, s := range r.Results {
		header += fmt.Sprintf(" %s %s |", shortBackend(s.Backend), keysLabel(s.Keys))
		rule += "---:|"
	}
	w("%s", header)
	w("%s", rule)
	var buckets []string
	for _, s := range r.Results {
		for _, p := range s.Profile {
			if !slices.Contains(buckets, p.Name) {
				buckets = append(buckets, p.Name)
			}
		}
	}
	for _, name := range buckets {
		row := "| " + name + " |"
		for _, s := range r.Results {
			row += fmt.Sprintf(" %.1f%% |", share(s.Profile, name))
		}
		w("%s", row)
	}
	w("")
	return b.String()
}

func tmpfsNote(dir string) string {
	if strings.HasSuffix(dir, "(tmpfs)") {
		return ": memory, where an fsync costs nothing, so that seeding a million keys fits the run; the seeding rates are then the CPU's cost of a create, not the disk's (make bench's creates are on disk); verify writes only its last-used times, batched each second"
	}
	return ""
}

func shortBackend(name string) string {
	if strings.HasPrefix(name, "PostgreSQL") {
		return "PG"
	}
	return name
}

func share(ps []profileShare, name string) float64 {
	for _, p := range ps {
		if p.Name == name {
			return p.Pct
		}
	}
	return 0
}

// growth says how a time grows from one size to another.
func growth(first, last time.Duration, dk float64) string {
	if last < 2*first || last-first < 50*time.Millisecond {
		return fmt.Sprintf("O(1): %s → %s", durationText(first), durationText(last))
	}
	return fmt.Sprintf("O(n): %s → %s, ~%.1f µs per key", durationText(first), durationText(last), float64(last-first)/float64(time.Microsecond)/dk)
}

// profileDiff names the profile buckets that grew most from the smallest size to the largest.
func profileDiff(first, last scaleResult) string {
	type d struct {
		name  string
		delta float64
	}
	var ds []d
	for _, p := range last.Profile {
		ds = append(ds, d{p.Name, p.Pct - share(first.Profile, p.Name)})
	}
	slices.SortFunc(ds, func(a, b d) int { return cmp.Compare(b.delta, a.delta) })
	var parts []string
	for _, x := range ds[:min(3, len(ds))] {
		if x.delta > 0.5 {
			parts = append(parts, fmt.Sprintf("%s %.1f%% → %.1f%%", x.name, share(first.Profile, x.name), share(last.Profile, x.name)))
		}
	}
	if len(parts) == 0 {
		return "The profiles' shares do not differ by more than half a point: the cost per verify is the same, so the difference is the machine (the other load on its cores) rather than the number of keys."
	}
	return "The profile's shares that grew most, smallest size → largest: " + strings.Join(parts, "; ") + "."
}

// plot writes throughput and RSS against keys (log x), one line per backend.
func (r *scaleReport) plot(path string) error {
	names, by := r.backends()
	mk := func(title, ylabel string, y func(scaleResult) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "keys"
		p.Y.Label.Text = ylabel
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min = 0
		var vs []any
		for _, name := range names {
			pts := make(plotter.XYs, len(by[name]))
			for i, s := range by[name] {
				pts[i].X, pts[i].Y = float64(s.Keys), y(s)
			}
			vs = append(vs, name, pts)
		}
		if err := plotutil.AddLinePoints(p, vs...); err != nil {
			return nil, err
		}
		p.Legend.Top = true
		p.Legend.Left = true
		return p, nil
	}
	tput, err := mk("verify throughput ("+fmt.Sprint(r.Conns)+" connections)", "requests/s", func(s scaleResult) float64 { return s.rps().med })
	if err != nil {
		return err
	}
	rss, err := mk("server RSS after the load", "MiB", func(s scaleResult) float64 { return float64(s.meanRSS()) / (1 << 20) })
	if err != nil {
		return err
	}
	width, height := 10*vg.Inch, 4*vg.Inch
	c := vgsvg.New(width, height)
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	canvases := plot.Align([][]*plot.Plot{{tput, rss}}, tiles, dc)
	tput.Draw(canvases[0][0])
	rss.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
