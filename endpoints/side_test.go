package endpoints

import (
	"strings"
	"testing"
)

func TestParseSide(t *testing.T) {
	ok := []struct {
		in   string
		want Side
	}{
		{"tank", Side{Dataset: "tank"}},
		{"tank/data", Side{Dataset: "tank/data"}},
		{"tank/v1.0:x", Side{Dataset: "tank/v1.0:x"}},
		{"tank/with space/x y", Side{Dataset: "tank/with space/x y"}},
		{"host:tank/x", Side{Host: "host", Dataset: "tank/x"}},
		{"host.example.org:tank", Side{Host: "host.example.org", Dataset: "tank"}},
		{"root@host:tank/a:b", Side{User: "root", Host: "host", Dataset: "tank/a:b"}},
		{"[::1]:tank/x", Side{Host: "::1", Dataset: "tank/x"}},
		{"bob@[fe80::1%eth0]:tank", Side{User: "bob", Host: "fe80::1%eth0", Dataset: "tank"}},
		{"backup-1.svc_zrep@host:tank", Side{User: "backup-1.svc_zrep", Host: "host", Dataset: "tank"}},
		{"10.0.0.1:backup/a b", Side{Host: "10.0.0.1", Dataset: "backup/a b"}},
	}
	for _, c := range ok {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSide(c.in)
			if err != nil {
				t.Fatalf("ParseSide(%q): %v", c.in, err)
			}
			if got != c.want {
				t.Fatalf("ParseSide(%q) = %+v, want %+v", c.in, got, c.want)
			}
			if s := got.String(); s != c.in {
				t.Fatalf("String() = %q, want %q", s, c.in)
			}
		})
	}

	bad := []struct{ in, wantErr string }{
		{"", "empty dataset"},
		{"/tank/data", "mountpoint"},
		{"tank/data/", "trailing slash"},
		{"tank//data", "empty component"},
		{"tank/data@snap", "snapshot"},
		{"tank/data#bm", "snapshot or bookmark"},
		{"host:", "empty dataset"},
		{":tank", "empty host"},
		{"@host:tank", "empty user"},
		{"-oProxyCommand=x:tank", "starts with '-'"},
		{"host:-tank", "start with a letter"},
		{"host:tank/a;b", "contains ';'"},
		{"tank/a\nb", "contains '\\n'"},
		{"[host]:tank", "only for IPv6"},
		{"[]:tank", "empty address"},
		{"tank/./x", "component \".\""},
		{"host:tank/" + strings.Repeat("x", 300), "255"},
		// SPEC 12: user names are checked like host names.
		{"a`x`@host:tank", "user name \"a`x`\" contains '`'"},
		{"a$(id)@host:tank", "contains '$'"},
		{"a;b@host:tank", "contains ';'"},
		{"a'b@host:tank", "contains '\\''"},
		{"a b@host:tank", "contains ' '"},
		{"a|b@[::1]:tank", "contains '|'"},
		{"-oProxyCommand=x@host:tank", "user name \"-oProxyCommand=x\" starts with '-'"},
		{"a@b@host:tank", "contains '@'"},
	}
	for _, c := range bad {
		t.Run("bad/"+c.in, func(t *testing.T) {
			got, err := ParseSide(c.in)
			if err == nil {
				t.Fatalf("ParseSide(%q) = %+v, want an error", c.in, got)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("ParseSide(%q) error %q does not mention %q", c.in, err, c.wantErr)
			}
		})
	}
}

func FuzzParseSide(f *testing.F) {
	for _, s := range []string{"tank", "tank/v1.0:x", "u@h:tank/a b", "[::1]:tank", "u@[::1]:t/x", "h:/x", "a:b:c", "[", "]:", "@[:]:a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		side, err := ParseSide(s)
		if err != nil {
			return
		}
		if err := CheckDatasetName(side.Dataset); err != nil {
			t.Fatalf("ParseSide(%q) accepted dataset %q: %v", s, side.Dataset, err)
		}
		again, err := ParseSide(side.String())
		if err != nil {
			t.Fatalf("ParseSide(%q).String() = %q does not parse: %v", s, side.String(), err)
		}
		if again != side {
			t.Fatalf("round trip of %q: %+v became %+v", s, side, again)
		}
	})
}
