package e2e

import (
	"strings"
	"testing"
)

// Bad command lines exit 2 before anything is contacted, with one line
// that says what is wrong.
func TestBadInput(t *testing.T) {
	requireLab(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", []string{"run"}, "SRC and DST"},
		{"one argument", []string{"run", "tank/a"}, "SRC and DST"},
		{"three arguments", []string{"plan", "a/b", "c/d", "e/f"}, "SRC and DST"},
		{"empty source", []string{"run", "", "tank/b"}, "SRC"},
		{"relative dataset", []string{"run", "/tank/a", "tank/b"}, "SRC"},
		{"snapshot as source", []string{"run", "tank/a@s1", "tank/b"}, "SRC"},
		{"empty remote dataset", []string{"run", "tank/a", "host:"}, "DST"},
		{"empty host", []string{"run", ":tank/a", "tank/b"}, "SRC"},
		{"trailing slash", []string{"run", "tank/a/", "tank/b"}, "SRC"},
		{"same dataset", []string{"run", "tank/a", "tank/a"}, "same"},
		{"destination inside source", []string{"run", "tank/a", "tank/a/b"}, "inside"},
		{"same remote dataset", []string{"run", "h:tank/a", "h:tank/a/c"}, "inside"},
		{"unknown flag", []string{"run", "--frobnicate", "tank/a", "tank/b"}, "frobnicate"},
		{"unknown command", []string{"push", "tank/a", "tank/b"}, "push"},
		{"bad duration", []string{"run", "--retry-wait", "soon", "tank/a", "tank/b"}, "retry-wait"},
		{"bad timeout", []string{"run", "--timeout", "-5s", "tank/a", "tank/b"}, "timeout"},
		{"bad count", []string{"run", "--retries", "many", "tank/a", "tank/b"}, "retries"},
		{"negative retries", []string{"run", "--retries", "-1", "tank/a", "tank/b"}, "retries"},
		{"bad initial", []string{"run", "--initial", "oldest", "tank/a", "tank/b"}, "initial"},
		{"bad regex", []string{"run", "--exclude", "(", "tank/a", "tank/b"}, "exclude"},
		{"bad port", []string{"run", "--ssh-port", "99999", "tank/a", "h:tank/b"}, "ssh-port"},
		{"bad progress", []string{"run", "--progress", "sometimes", "tank/a", "tank/b"}, "progress"},
		{"bad log level", []string{"plan", "--log-level", "loud", "tank/a", "tank/b"}, "log-level"},
		{"run-only flag on plan", []string{"plan", "--timeout", "1s", "tank/a", "tank/b"}, "timeout"},
		{"bad env var", []string{"run", "tank/a", "tank/b", "ZREP_RETRIES=lots"}, "retries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args, env := tc.args, []string(nil)
			if last := args[len(args)-1]; strings.HasPrefix(last, "ZREP_") {
				args, env = args[:len(args)-1], []string{last}
			}
			r := zrepCtx(withTimeout(t, 30*1e9), t, env, args...).mustExit(t, 2)
			if len(r.argv) != 0 {
				t.Errorf("a usage error contacted zfs: %v", r.argv)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("want one line on stderr, got %d:\n%s", len(lines), r.stderr)
			}
			if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(tc.want)) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r.stderr)
			}
		})
	}
}
