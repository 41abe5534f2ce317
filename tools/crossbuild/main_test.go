package main

import (
	"slices"
	"testing"
)

func TestPickOnePerOS(t *testing.T) {
	both := []string{"./", "./cmd/keymint"}
	mains := map[string][]string{
		"linux/386": {"./"}, "linux/amd64": both, "linux/arm64": both, "linux/arm": {"./"},
		"windows/386": {"./"}, "windows/amd64": both,
		"darwin/amd64": both, "darwin/arm64": both,
		"freebsd/amd64": {"./"}, "freebsd/386": {"./"}, "freebsd/arm": {"./"},
	}
	var targets []string
	for t := range mains {
		targets = append(targets, t)
	}
	got := pickOnePerOS(targets, mains)
	slices.Sort(got)
	// The most of what ships first (the server is not built for freebsd or
	// 32-bit), then 32-bit.
	want := []string{"darwin/amd64", "freebsd/386", "linux/amd64", "windows/amd64"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
