package main

import "testing"

// Bad snapshot and retention flags are usage errors (exit 2), caught
// before any side is contacted.
func TestRetentionUsageErrors(t *testing.T) {
	cases := [][]string{
		{"zrep", "run", "--keep-source", "", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-source", "daily", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-dest", "daily=7,fortnightly=2", "tank/a", "tank/b"},
		{"zrep", "plan", "--keep-dest", "last=0", "tank/a", "tank/b"},
		{"zrep", "plan", "--keep-source", "within=3s", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-source", "last=1", "--prune-match", "(", "tank/a", "tank/b"},
		{"zrep", "run", "--snapshot", "--prefix", "-r", "tank/a", "tank/b"},
		{"zrep", "run", "--snapshot", "--prefix", "a@b", "tank/a", "tank/b"},
		{"zrep", "prune", "tank/a", "tank/b"},
		{"zrep", "prune", "--keep-source", "hourly=x", "tank/a", "tank/b"},
		{"zrep", "prune", "--snapshot", "--keep-source", "last=1", "tank/a", "tank/b"},
		{"zrep", "snapshot"},
		{"zrep", "snapshot", "tank/a", "tank/b"},
		{"zrep", "snapshot", "--prefix", "", "tank/a"},
		{"zrep", "snapshot", "--exclude", "[", "tank/a"},
		{"zrep", "snapshot", "tank/a@x"},
	}
	assertUsageErrors(t, cases)
}
