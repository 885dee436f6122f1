package replication_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func TestReportJSON(t *testing.T) {
	w := newWorld(t)
	w.src.NoEstimates = true
	w.src.Snapshot("tank", "s1")
	rep := w.drive(t, w.config())

	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(top), " "); got != "active bytes completed duration_seconds pending problem snapshot status wire_bytes" {
		t.Errorf("report keys %s", got)
	}
	if top["status"] != "Completed" || top["active"] != nil || top["problem"] != "" {
		t.Errorf("report %s", js)
	}
	if !bytes.Contains(js, []byte(`"pending":[]`)) {
		t.Errorf("pending must be [] not null: %s", js)
	}
	fs := top["completed"].([]any)[0].(map[string]any)
	if got := strings.Join(keys(fs), " "); got != "bytes destination filesystem held problem pruned status steps" {
		t.Errorf("filesystem keys %s", got)
	}
	if fs["filesystem"] != "tank" || fs["destination"] != "backup/tank" || fs["status"] != "Completed" {
		t.Errorf("filesystem %v", fs)
	}
	if p, _ := json.Marshal(fs["pruned"]); string(p) != `{"destination":[],"source":[]}` {
		t.Errorf("pruned must be present with empty lists: %s", p)
	}
	st := fs["steps"].([]any)[0].(map[string]any)
	if got := strings.Join(keys(st), " "); got != "bytes expected_bytes from resumed status to wire_bytes" {
		t.Errorf("step keys %s", got)
	}
	if st["wire_bytes"] != st["bytes"] || st["bytes"] == 0.0 {
		t.Errorf("uncompressed, the wire carries the stream's bytes: %v", st)
	}
	if st["from"] != nil || st["to"] != "s1" || st["expected_bytes"] != nil || st["status"] != "Completed" || st["resumed"] != false {
		t.Errorf("step %v", st)
	}

	var back replication.Report
	if err := json.Unmarshal(js, &back); err != nil || back.Status != replication.Completed.String() || back.Completed[0].Steps[0].Status != replication.StepCompleted.String() {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestReportBeforeDrive(t *testing.T) {
	js, _ := json.Marshal(replication.NewReplication(replication.Config{}).Report())
	want := `{"status":"Planning","problem":"","snapshot":null,"completed":[],"pending":[],"active":null,"bytes":0,"wire_bytes":0,"duration_seconds":0}`
	if string(js) != want {
		t.Errorf("got %s\nwant %s", js, want)
	}
}

func TestReportText(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.src.Snapshot("tank", "s1")
	w.src.Snapshot("tank/a", "s1")
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/a" {
			return pdu.PermanentError(errors.New("out of space"))
		}
		return nil
	}
	rep := w.drive(t, w.config())
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{"Status: Completed", "tank → backup/tank: Completed", "(none) → s1: Completed",
		"tank/a → backup/tank/a: PermanentError", "problem: receive backup/tank/a: ", "out of space", "(none) → s1: PermanentError"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

func TestPlanChangesNothing(t *testing.T) {
	w := divergedWorld(t)
	srcBefore, dstBefore := len(w.src.Calls()), len(w.dst.Calls())
	cfg := w.config()
	p, err := replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	if len(w.src.Calls()) != srcBefore || len(w.dst.Calls()) != dstBefore {
		t.Errorf("plan changed something: %v %v", w.src.Calls()[srcBefore:], w.dst.Calls()[dstBefore:])
	}
	f := p.Filesystems[0]
	if !p.HasProblem() || f.Problem == "" || !strings.Contains(f.Conflict, "diverged") || len(f.Steps) != 0 {
		t.Errorf("diverged plan without --rollback: %+v", f)
	}

	cfg.Rollback = true
	p, err = replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	f = p.Filesystems[0]
	if p.HasProblem() || !strings.Contains(f.Resolution, "roll back to @s2") || len(f.Steps) != 1 || *f.Steps[0].From != "s2" || f.Steps[0].To != "s3" || f.Steps[0].ExpectedBytes == nil {
		t.Errorf("diverged plan with --rollback: %+v", f)
	}
	if len(w.dst.Calls()) != dstBefore {
		t.Errorf("plan changed something")
	}

	js, _ := json.Marshal(p)
	var top map[string][]map[string]any
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(keys(top["filesystems"][0]), " "); got != "conflict destination destination_encryption filesystem held problem pruned resolution send send_reason source_encryption steps" {
		t.Errorf("plan keys %s", got)
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil || !strings.Contains(text.String(), "s2 → s3: ") {
		t.Errorf("plan text %q", text.String())
	}
}

func TestPlanListingFailure(t *testing.T) {
	w := newWorld(t)
	w.dst.FailNext(memzfs.OpList, 1, pdu.RetryableError(errors.New("ssh: connection refused")))
	_, err := replication.Plan(context.Background(), w.config(), w.sender(), w.receiver())
	if err == nil || !strings.Contains(err.Error(), "list destination backup/tank") {
		t.Errorf("err = %v", err)
	}
}

func TestPlanEmptyStepsJSON(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.drive(t, w.config())
	p, err := replication.Plan(context.Background(), w.config(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(p)
	if !bytes.Contains(js, []byte(`"steps":[]`)) || !bytes.Contains(js, []byte(`"resolution":"up to date"`)) {
		t.Errorf("%s", js)
	}
}

// A destination that does not exist yet is new, not a conflict: the plan
// says so and that it gets a full send.
func TestPlanNewDestination(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.Snapshot("tank", "s2")
	p, err := replication.Plan(context.Background(), w.config(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	f := p.Filesystems[0]
	if f.Conflict != "" || f.Problem != "" || p.HasProblem() {
		t.Errorf("new destination: conflict %q, problem %q", f.Conflict, f.Problem)
	}
	if f.Resolution != "new: full send of the newest snapshot @s2 (--initial newest)" {
		t.Errorf("resolution %q", f.Resolution)
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil || strings.Contains(text.String(), "conflict") || !strings.Contains(text.String(), "new: full send") {
		t.Errorf("plan text:\n%s", text.String())
	}
}

// TestReportTextLeadsWithFailures: the text of a run in which filesystems
// failed starts with how many and one line each (problem and hint, on one
// line), then the details as after a success; a successful run's text is
// unchanged.
func TestReportTextLeadsWithFailures(t *testing.T) {
	s1, s2 := "s1", "s2"
	done := func(fs string) *replication.FilesystemReport {
		return &replication.FilesystemReport{Filesystem: "tank" + fs, Destination: "backup/tank" + fs, Status: "Completed", Bytes: 2048,
			Steps: []*replication.StepReport{{From: &s1, To: s2, Status: "Completed", Bytes: 2048}}}
	}
	failed := func(fs, problem string) *replication.FilesystemReport {
		return &replication.FilesystemReport{Filesystem: "tank" + fs, Destination: "backup/tank" + fs, Status: "PermanentError", Problem: problem,
			Steps: []*replication.StepReport{{From: &s1, To: s2, Status: "PermanentError"}}}
	}
	for _, c := range []struct {
		name string
		rep  replication.Report
		want string
	}{
		{"success", replication.Report{Status: "Completed", Completed: []*replication.FilesystemReport{done(""), done("/a")}, Bytes: 4096, DurationSeconds: 1.5},
			`Status: Completed
Transferred: 4.0 KiB in 1.5s

tank → backup/tank: Completed, 2.0 KiB
    s1 → s2: Completed, 2.0 KiB

tank/a → backup/tank/a: Completed, 2.0 KiB
    s1 → s2: Completed, 2.0 KiB
`},
		{"one of three failed", replication.Report{Status: "Completed", Bytes: 4096, DurationSeconds: 2,
			Completed: []*replication.FilesystemReport{done(""), failed("/a", "receive backup/tank/a: zfs receive: out of space (free space on the destination pool)"), done("/b")}},
			`FAILED: 1 of 3 filesystems
  tank/a → backup/tank/a: receive backup/tank/a: zfs receive: out of space (free space on the destination pool)

Status: Completed
Transferred: 4.0 KiB in 2s

tank → backup/tank: Completed, 2.0 KiB
    s1 → s2: Completed, 2.0 KiB

tank/a → backup/tank/a: PermanentError, 0 B
    problem: receive backup/tank/a: zfs receive: out of space (free space on the destination pool)
    s1 → s2: PermanentError, 0 B

tank/b → backup/tank/b: Completed, 2.0 KiB
    s1 → s2: Completed, 2.0 KiB
`},
		{"two failed, one problem on two lines", replication.Report{Status: "Completed",
			Completed: []*replication.FilesystemReport{failed("", "backup/tank has diverged: it has x after the newest common snapshot s1; use --rollback to roll backup/tank back to s1, destroying them"), failed("/a", "send tank/a:\ncannot open 'tank/a@s2':\n  dataset does not exist")}},
			`FAILED: 2 of 2 filesystems
  tank → backup/tank: backup/tank has diverged: it has x after the newest common snapshot s1; use --rollback to roll backup/tank back to s1, destroying them
  tank/a → backup/tank/a: send tank/a: cannot open 'tank/a@s2': dataset does not exist

Status: Completed
Transferred: 0 B in 0s

tank → backup/tank: PermanentError, 0 B
    problem: backup/tank has diverged: it has x after the newest common snapshot s1; use --rollback to roll backup/tank back to s1, destroying them
    s1 → s2: PermanentError, 0 B

tank/a → backup/tank/a: PermanentError, 0 B
    problem: send tank/a:
cannot open 'tank/a@s2':
  dataset does not exist
    s1 → s2: PermanentError, 0 B
`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}
