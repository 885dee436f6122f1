package endpoints

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestParseAllowCaptured(t *testing.T) {
	c := readCapture(t, openzfs, "allow-full")
	ds, err := ParseAllow(c.out, "tank/cap/bk/web 1/data")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Dataset)
	}
	want := []string{"tank/cap/bk/web 1/data", "tank/cap/bk/web 1", "tank/cap/bk", "tank/cap"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("sections %q, want %q", names, want)
	}
	bk := ds[2]
	if !reflect.DeepEqual(bk.Create, []string{"destroy", "mount"}) {
		t.Errorf("create-time permissions %q", bk.Create)
	}
	wantEntries := []Delegation{
		{Local, "user", "zcap2", []string{"hold", "send"}},
		{Descendent, "group", "users", []string{"snapshot"}},
		{LocalDescendent, "user", "zdeleg", []string{"create", "mount", "receive"}},
		{LocalDescendent, "user", "(unknown: 4242)", []string{"hold"}},
	}
	if !reflect.DeepEqual(bk.Entries, wantEntries) {
		t.Errorf("entries on tank/cap/bk:\n%+v\nwant\n%+v", bk.Entries, wantEntries)
	}
	if got := ds[1].Entries; len(got) != 1 || got[0].Name != "(unknown: 4343)" || got[0].Kind != "group" {
		t.Errorf("entries on tank/cap/bk/web 1: %+v", got)
	}
	top := ds[3]
	if !reflect.DeepEqual(top.Sets["@backup"], []string{"canmount", "create", "mount", "receive", "userprop"}) {
		t.Errorf("set @backup = %q", top.Sets["@backup"])
	}
	if got := top.Entries[1]; got.Kind != "everyone" || got.Name != "" || !reflect.DeepEqual(got.Perms, []string{"destroy"}) {
		t.Errorf("everyone entry %+v", got)
	}
}

func TestParseAllowNone(t *testing.T) {
	c := readCapture(t, openzfs, "allow-none")
	ds, err := ParseAllow(c.out, "tank/cap/bk")
	if err != nil || len(ds) != 0 {
		t.Fatalf("ParseAllow(%q) = %v, %v; want nothing", c.out, ds, err)
	}
}

func TestParseAllowRejects(t *testing.T) {
	good := readCapture(t, openzfs, "allow-parent").out
	for _, tc := range []struct{ name, out, dataset string }{
		{"another dataset", good, "tank/other"},
		{"a descendant's section", good, "tank"},
		{"text before the header", "hello\n" + good, "tank/cap/bk"},
		{"unknown section", strings.Replace(good, "Local permissions:", "Remote permissions:", 1), "tank/cap/bk"},
		{"line without tab", strings.Replace(good, "\tuser zcap2", "user zcap2", 1), "tank/cap/bk"},
		{"unknown kind", strings.Replace(good, "\tuser zcap2", "\trole zcap2", 1), "tank/cap/bk"},
		{"name with space", strings.Replace(good, "user zcap2", "user z cap2", 1), "tank/cap/bk"},
		{"empty permission", strings.Replace(good, "hold,send", "hold,,send", 1), "tank/cap/bk"},
		{"odd permission", strings.Replace(good, "hold,send", "hold,se;nd", 1), "tank/cap/bk"},
		{"set without @", strings.Replace(good, "\t@backup", "\tbackup", 1), "tank/cap/bk"},
		{"sections out of order", "---- Permissions on tank ---\n---- Permissions on tank/cap ---\n", "tank/cap"},
		{"header without space", "---- Permissions on tank/cap---\n", "tank/cap"},
		{"entry before a section title", "---- Permissions on tank/cap ---\n\tuser a send\n", "tank/cap"},
		{"user without permissions", "---- Permissions on tank/cap ---\nLocal permissions:\n\tuser a\n", "tank/cap"},
	} {
		if ds, err := ParseAllow(tc.out, tc.dataset); err == nil {
			t.Errorf("%s: accepted, got %+v", tc.name, ds)
		}
	}
}

func TestParseAllowHeaderNames(t *testing.T) {
	// The padding stops at the name; a long name gets none; a name may end in '-'.
	for _, name := range []string{"tank/a-", "tank/a -", "tank/" + strings.Repeat("x", 80)} {
		pad := strings.Repeat("-", max(0, 70-len(allowHeader+name+" ")))
		out := allowHeader + name + " " + pad + "\nLocal permissions:\n\tuser a send\n"
		ds, err := ParseAllow(out, name)
		if err != nil || len(ds) != 1 || ds[0].Dataset != name {
			t.Errorf("%q: %+v, %v", name, ds, err)
		}
	}
}

func keys(m map[string]bool) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

func TestEffective(t *testing.T) {
	out := readCapture(t, openzfs, "allow-full").out
	ds, err := ParseAllow(out, "tank/cap/bk/web 1/data")
	if err != nil {
		t.Fatal(err)
	}
	zdeleg := Account{UID: 1000, Name: "zdeleg", Groups: []string{"zdeleg"}}
	zcap2 := Account{UID: 1001, Name: "zcap2", Groups: []string{"users"}}
	unknown := Account{UID: 4242, Name: "x", Groups: []string{"y"}}
	for _, tc := range []struct {
		acct    Account
		dataset string
		child   bool
		want    []string
	}{
		// Its own bookmark, tank/cap/bk's create,mount,receive, tank/cap's
		// @backup set and readonly, and everyone's destroy.
		{zdeleg, "tank/cap/bk/web 1/data", false, []string{"bookmark", "canmount", "create", "destroy", "mount", "readonly", "receive", "userprop"}},
		// zcap2: bookmark here, the group users' descendent snapshot of
		// tank/cap/bk; not its local hold,send.
		{zcap2, "tank/cap/bk/web 1/data", false, []string{"bookmark", "destroy", "snapshot"}},
		{zcap2, "tank/cap/bk", false, []string{"destroy", "hold", "send"}},
		// On a new child of tank/cap/bk: only what is granted to descendants.
		{zcap2, "tank/cap/bk", true, []string{"destroy", "snapshot"}},
		// An id without a name.
		{unknown, "tank/cap/bk/web 1/data", false, []string{"destroy", "hold"}},
	} {
		var sub Delegations
		for _, d := range ds {
			if d.Dataset == tc.dataset || strings.HasPrefix(tc.dataset, d.Dataset+"/") {
				sub = append(sub, d)
			}
		}
		if got := keys(sub.Effective(tc.acct, tc.dataset, tc.child)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s on %s (child %v): %q, want %q", tc.acct.Name, tc.dataset, tc.child, got, tc.want)
		}
	}
}

func TestMissing(t *testing.T) {
	out := readCapture(t, openzfs, "allow-parent").out
	ds, err := ParseAllow(out, "tank/cap/bk")
	if err != nil {
		t.Fatal(err)
	}
	zdeleg := Account{UID: 1000, Name: "zdeleg"}
	needs := Needs("destination", Work{KeepDest: true, Rollback: true})
	// A new destination under tank/cap/bk: the @backup set and everyone's
	// destroy from tank/cap, create,mount,receive on tank/cap/bk.
	if m := ds.Missing(zdeleg, "tank/cap/bk", false, needs); !reflect.DeepEqual(Permissions(m), []string{"rollback"}) {
		t.Errorf("missing %q, want rollback", Permissions(m))
	}
	// zcap2 holds create nowhere it counts.
	zcap2 := Account{UID: 1001, Name: "zcap2", Groups: []string{"users"}}
	if m := ds.Missing(zcap2, "tank/cap/bk", true, needs); !slices.Equal(Permissions(m), []string{"receive", "create", "mount", "rollback"}) {
		t.Errorf("missing %q", Permissions(m))
	}
}

func TestMissingPermissionErrorNamesTheFix(t *testing.T) {
	e := &MissingPermissionError{
		Role: "destination", Side: Side{User: "backup", Host: "nas", Dataset: "pool/bk/web"},
		Account: "backup", Grant: "pool/bk",
		Missing: []Need{{"destroy", "--keep-dest"}, {"rollback", "--rollback"}},
	}
	msg := e.Error()
	for _, want := range []string{"destination backup@nas:pool/bk/web", "account backup", "destroy (--keep-dest)", "rollback (--rollback)", "on nas: zfs allow -u backup destroy,rollback pool/bk"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func FuzzParseAllow(f *testing.F) {
	for _, name := range []string{"allow-full", "allow-parent", "allow-none"} {
		f.Add(readCapture(f, openzfs, name).out, "tank/cap/bk/web 1/data")
	}
	f.Fuzz(func(t *testing.T, out, dataset string) {
		ds, err := ParseAllow(out, dataset)
		if err != nil {
			return
		}
		for i, d := range ds {
			if d.Dataset != dataset && !strings.HasPrefix(dataset, d.Dataset+"/") {
				t.Fatalf("section %q is not %q or an ancestor", d.Dataset, dataset)
			}
			if i > 0 && !strings.HasPrefix(ds[i-1].Dataset, d.Dataset+"/") {
				t.Fatalf("section %q after %q", d.Dataset, ds[i-1].Dataset)
			}
			for _, e := range d.Entries {
				if len(e.Perms) == 0 || e.Scope == 0 {
					t.Fatalf("entry %+v", e)
				}
			}
		}
		ds.Effective(Account{Name: "a"}, dataset, false)
	})
}

// runDelegationScript runs delegationArgv's script under sh with fake id
// and zfs commands: zfs allow prints the capture named for each dataset,
// or fails as for a dataset that does not exist.
func runDelegationScript(t *testing.T, uid string, captures map[string]string, dataset, parent string) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", `case "$1" in -u) echo `+uid+`;; -un) echo zdeleg;; -Gn) echo zdeleg users;; esac`)
	var cases strings.Builder
	for ds, name := range captures {
		fmt.Fprintf(&cases, "%s) cat %s;;\n", shellQuote(ds), shellQuote(filepath.Join("..", "testdata", "zfs", openzfs, name+".out")))
	}
	write("zfs", `[ "$1" = allow ] || exit 2
case "$2" in
`+cases.String()+`*) echo "cannot open '$2': dataset does not exist" >&2; echo "Failed to open dataset: $2" >&2; exit 255;;
esac`)
	req, _, _ := delegationArgv(dataset, parent)
	argv := req.Argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("delegation script: %v", err)
	}
	return string(out)
}

func TestDelegationScript(t *testing.T) {
	caps := map[string]string{"tank/cap/bk": "allow-parent", "tank/cap/bk/web 1/data": "allow-full"}

	// An existing dataset: its own zfs allow, no parent's.
	out := runDelegationScript(t, "1000", caps, "tank/cap/bk/web 1/data", "tank/cap/bk/web 1")
	d, err := parseDelegationOutput(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d.account.UID != 1000 || d.account.Name != "zdeleg" || !slices.Equal(d.account.Groups, []string{"zdeleg", "users"}) {
		t.Errorf("account %+v", d.account)
	}
	if d.allowStatus != 0 || d.parentRan || d.allow+"\n" != readCapture(t, openzfs, "allow-full").out {
		t.Errorf("allow status %d, parent ran %v, output:\n%s", d.allowStatus, d.parentRan, d.allow)
	}

	// A destination not created yet: its parent's.
	out = runDelegationScript(t, "1000", caps, "tank/cap/bk/new", "tank/cap/bk")
	d, err = parseDelegationOutput(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d.allowStatus != 255 || !d.parentRan || d.parentStatus != 0 || d.parent+"\n" != readCapture(t, openzfs, "allow-parent").out {
		t.Errorf("allow status %d (%s), parent ran %v status %d:\n%s", d.allowStatus, d.allow, d.parentRan, d.parentStatus, d.parent)
	}
	ds, err := ParseAllow(d.parent, "tank/cap/bk")
	if err != nil {
		t.Fatal(err)
	}
	if m := ds.Missing(d.account, "tank/cap/bk", false, Needs("destination", Work{KeepDest: true, Rollback: true})); !slices.Equal(Permissions(m), []string{"rollback"}) {
		t.Errorf("missing %q, want rollback", Permissions(m))
	}

	// Root: nothing more asked.
	out = runDelegationScript(t, "0", caps, "tank/cap/bk", "")
	if d, err := parseDelegationOutput(out); err != nil || d.account.UID != 0 || strings.Contains(out, markAllow) {
		t.Errorf("root: %+v, %v\n%s", d, err, out)
	}

	// No delegation at all: empty output parses to nothing.
	out = runDelegationScript(t, "1000", map[string]string{"tank/x": "allow-none"}, "tank/x", "")
	d, err = parseDelegationOutput(out)
	if err != nil || d.allow != "" || d.allowStatus != 0 {
		t.Errorf("none: %+v, %v\n%q", d, err, out)
	}
}

func TestDelegationScriptQuotesNames(t *testing.T) {
	req, allow, _ := delegationArgv("tank/it's $(x)", "tank")
	line := req.String()
	if !strings.Contains(line, " "+shellQuote(allow[2])) || strings.Contains(line, " tank/it's") {
		t.Errorf("request %s does not quote the dataset", line)
	}
	if got, err := ParseRequest(line); err != nil || got.Kind != RequestDelegation || !slices.Equal(got.Words, req.Words) {
		t.Errorf("the request does not read back: %+v, %v", got, err)
	}
}

func TestParseDelegationOutputRejects(t *testing.T) {
	for _, out := range []string{
		"",
		"uid 1000\n",
		"zrep:uid x\n",
		"zrep:uid 1000\n",
		"zrep:uid 1000\nzrep:user a\nzrep:groups a\n",
		"zrep:uid 1000\nzrep:user -a\nzrep:groups a\nzrep:allow 0\n",
		"zrep:uid 1000\nzrep:user a\nzrep:groups a\nstray\nzrep:allow 0\n",
		"zrep:uid 1000\nzrep:user a\nzrep:groups a\nzrep:allow x\n",
	} {
		if d, err := parseDelegationOutput(out); err == nil {
			t.Errorf("accepted %q: %+v", out, d)
		}
	}
}

func FuzzParseDelegationOutput(f *testing.F) {
	f.Add("zrep:uid 0\n")
	f.Add("zrep:uid 1000\nzrep:user zdeleg\nzrep:groups zdeleg users\nzrep:allow 0\n" + readCapture(f, openzfs, "allow-full").out)
	f.Add("zrep:uid 1000\nzrep:user a\nzrep:groups a\nzrep:allow 255\ncannot open 'x': dataset does not exist\nzrep:parent 0\n")
	f.Fuzz(func(t *testing.T, out string) {
		d, err := parseDelegationOutput(out)
		if err != nil || d.account.UID == 0 {
			return
		}
		if checkAccount(d.account.Name) != nil {
			t.Fatalf("accepted account %q", d.account.Name)
		}
		if d.parent != "" && !d.parentRan {
			t.Fatalf("parent output without its marker: %+v", d)
		}
	})
}
