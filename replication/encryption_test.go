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

// mixedWorld is a source tree of every kind: tank (not encrypted, with
// snapshots), tank/enc (an encryption root), tank/enc/kid (inheriting
// it), tank/enc/plain (unencrypted below the encrypted parent), and
// tank/bare (encrypted, without snapshots) holding tank/bare/kid.
func mixedWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	w.src.CreateEncrypted("tank/enc")
	w.src.CreateFilesystem("tank/enc/kid")
	w.src.CreateUnencrypted("tank/enc/plain")
	w.src.CreateEncrypted("tank/bare")
	w.src.CreateFilesystem("tank/bare/kid")
	for _, fs := range []string{"tank", "tank/enc", "tank/enc/kid", "tank/enc/plain", "tank/bare/kid"} {
		w.src.Snapshot(fs, "s1")
	}
	return w
}

func planOf(t *testing.T, w *world, cfg replication.Config) map[string]*replication.FilesystemPlan {
	t.Helper()
	p, err := replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*replication.FilesystemPlan{}
	for _, f := range p.Filesystems {
		m[f.Filesystem] = f
	}
	return m
}

// TestPlanSendModePerFilesystem: an encrypted source filesystem is sent raw
// by default and decrypted with Decrypt; one that is not encrypted goes as
// it is, even below an encrypted parent. The plan says why, and shows each
// side's encryption root and key status.
func TestPlanSendModePerFilesystem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decrypt bool
		want    map[string]replication.SendMode
	}{
		{"default", false, map[string]replication.SendMode{
			"tank": replication.SendPlain, "tank/enc": replication.SendRaw, "tank/enc/kid": replication.SendRaw,
			"tank/enc/plain": replication.SendPlain, "tank/bare": replication.SendRaw, "tank/bare/kid": replication.SendRaw}},
		{"decrypt", true, map[string]replication.SendMode{
			"tank": replication.SendPlain, "tank/enc": replication.SendDecrypted, "tank/enc/kid": replication.SendDecrypted,
			"tank/enc/plain": replication.SendPlain, "tank/bare": replication.SendDecrypted, "tank/bare/kid": replication.SendDecrypted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := mixedWorld(t)
			cfg := w.config()
			cfg.Decrypt = tc.decrypt
			plans := planOf(t, w, cfg)
			for fs, mode := range tc.want {
				f := plans[fs]
				if f == nil {
					t.Fatalf("no plan for %s", fs)
				}
				if f.Send != mode || !strings.HasPrefix(f.SendReason, string(mode)) && mode != replication.SendPlain {
					t.Errorf("%s: send %q (%s), want %q", fs, f.Send, f.SendReason, mode)
				}
				if f.Problem != "" {
					t.Errorf("%s: problem %s", fs, f.Problem)
				}
			}
			kid := plans["tank/enc/kid"]
			if got := *kid.SourceEncryption; got != (replication.EncryptionStatus{Encrypted: true, EncryptionRoot: "tank/enc", KeyStatus: "available"}) {
				t.Errorf("tank/enc/kid source encryption %+v", got)
			}
			if kid.DestinationEncryption != nil {
				t.Errorf("tank/enc/kid destination encryption %+v, want null: it does not exist yet", kid.DestinationEncryption)
			}
			if got := *plans["tank/enc/plain"].SourceEncryption; got.Encrypted || got.EncryptionRoot != "" || got.KeyStatus != "" {
				t.Errorf("tank/enc/plain source encryption %+v, want not encrypted", got)
			}
		})
	}
}

// TestDriveRawByDefault: a mixed tree replicates with every encrypted
// filesystem sent raw (its destination encrypted, its key not loaded
// there) and every other one as it is, then incrementally; the
// placeholder for the encrypted source without snapshots holds nothing.
func TestDriveRawByDefault(t *testing.T) {
	w := mixedWorld(t)
	cfg := w.config()
	rec := &recordingSender{Sender: w.sender()}
	run := func() *replication.Report {
		r := replication.NewReplication(cfg)
		r.Drive(context.Background(), rec, w.receiver())
		return r.Report()
	}
	if rep := run(); rep.Failed() {
		t.Fatalf("first run: %+v", allFilesystems(rep))
	}
	for _, fs := range []string{"tank", "tank/enc", "tank/enc/kid", "tank/enc/plain", "tank/bare/kid"} {
		w.src.Snapshot(fs, "s2")
	}
	if rep := run(); rep.Failed() {
		t.Fatalf("second run: %+v", allFilesystems(rep))
	}
	for _, tc := range []struct {
		fs        string
		encrypted bool
	}{
		{"backup/tank", false},
		{"backup/tank/enc", true},
		{"backup/tank/enc/kid", true},
		{"backup/tank/enc/plain", false},
		{"backup/tank/bare/kid", true},
	} {
		assertSnapshots(t, w.dst, tc.fs, "s1", "s2")
		enc, root, key := w.dst.Encryption(tc.fs)
		if got := enc != "off"; got != tc.encrypted {
			t.Errorf("%s: encryption %s, want encrypted %v", tc.fs, enc, tc.encrypted)
		}
		if tc.encrypted && (root != tc.fs || key != pdu.KeyUnavailable) {
			t.Errorf("%s: encryption root %s, key %s; want its own root, its key not loaded", tc.fs, root, key)
		}
	}
	if !w.dst.IsPlaceholder("backup/tank/bare") || len(w.dst.SnapshotNames("backup/tank/bare")) != 0 {
		t.Errorf("backup/tank/bare should be an empty placeholder")
	}
	var raw []string
	for _, c := range w.src.Calls() {
		if strings.HasPrefix(c, "Send ") && strings.Contains(c, " raw ") {
			raw = append(raw, strings.Fields(c)[1])
		}
	}
	slices.Sort(raw)
	raw = slices.Compact(raw)
	if want := []string{"tank/bare/kid", "tank/enc", "tank/enc/kid"}; !slices.Equal(raw, want) {
		t.Errorf("sent raw: %v, want %v (calls %v)", raw, want, w.src.Calls())
	}
	if len(rec.estimates) == 0 {
		t.Errorf("no estimates")
	}
}

// TestDriveDecrypt: with Decrypt the streams are plaintext and the
// destination, below an unencrypted parent, is not encrypted; without the
// source's key loaded the plan names the problem instead.
func TestDriveDecrypt(t *testing.T) {
	w := newWorld(t)
	w.src.CreateEncrypted("tank")
	w.src.Snapshot("tank", "s1")
	cfg := w.config()
	cfg.Decrypt = true

	w.src.UnloadKey("tank")
	plans := planOf(t, w, cfg)
	if p := plans["tank"].Problem; !strings.Contains(p, "--decrypt needs the key") || !strings.Contains(p, "zfs load-key tank") {
		t.Errorf("decrypt without the key: problem %q", p)
	}
	w.src.LoadKey("tank")

	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("%+v", allFilesystems(rep))
	}
	if enc, _, _ := w.dst.Encryption("backup/tank"); enc != "off" {
		t.Errorf("backup/tank: encryption %s after --decrypt below an unencrypted parent", enc)
	}
}

// TestPlanSwitchingIsAConflict: a destination received decrypted cannot be
// continued raw, and one received raw is not continued with --decrypt:
// the plan names the conflict, the run fails that filesystem, and nothing
// is destroyed or received.
func TestPlanSwitchingIsAConflict(t *testing.T) {
	for _, tc := range []struct {
		name           string
		first, then    bool // Decrypt
		want           string
		dstCallsBefore int
	}{
		{"decrypted then raw", true, false, "was received decrypted", 0},
		{"raw then decrypted", false, true, "was received raw", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.src.CreateEncrypted("tank")
			w.src.Snapshot("tank", "s1")
			cfg := w.config()
			cfg.Decrypt = tc.first
			if rep := w.drive(t, cfg); rep.Failed() {
				t.Fatalf("first run: %+v", allFilesystems(rep))
			}
			w.src.Snapshot("tank", "s2")
			before := len(w.dst.Calls())

			cfg.Decrypt = tc.then
			f := planOf(t, w, cfg)["tank"]
			if !strings.Contains(f.Conflict, tc.want) || f.Problem != f.Conflict || len(f.Steps) != 0 || f.Resolution != "" {
				t.Errorf("plan: conflict %q, problem %q, steps %v, resolution %q", f.Conflict, f.Problem, f.Steps, f.Resolution)
			}
			if !strings.Contains(f.Conflict, "new destination") {
				t.Errorf("conflict %q does not name the way out", f.Conflict)
			}
			rep := w.drive(t, cfg)
			fr := allFilesystems(rep)["tank"]
			if !rep.Failed() || fr.Status != replication.FilesystemPermanentError.String() || !strings.Contains(fr.Problem, tc.want) {
				t.Errorf("run: %+v", fr)
			}
			if calls := w.dst.Calls(); len(calls) != before {
				t.Errorf("the destination was changed: %v", calls[before:])
			}
			assertSnapshots(t, w.dst, "backup/tank", "s1")
		})
	}
}

// TestPlaceholdersUnderALockedParent: a destination parent that is
// encrypted with its key not loaded (a backup host without keys) takes an
// unencrypted source tree's placeholder and the raw streams of its
// encrypted children, then their incrementals.
func TestPlaceholdersUnderALockedParent(t *testing.T) {
	w := newWorld(t)
	w.src.CreateFilesystem("tank/top")
	w.src.CreateEncrypted("tank/top/enc")
	w.src.Snapshot("tank/top/enc", "s1")
	w.dst.CreateEncrypted("backup/lock")
	w.dst.UnloadKey("backup/lock")
	cfg := w.config()
	cfg.SourceRoot, cfg.DestRoot = "tank/top", "backup/lock/top"
	sender, receiver := w.src.Sender("tank/top", true), w.dst.Receiver("backup/lock/top", true)
	run := func() *replication.Report {
		r := replication.NewReplication(cfg)
		r.Drive(context.Background(), sender, receiver)
		return r.Report()
	}
	if rep := run(); rep.Failed() {
		t.Fatalf("first run: %+v", allFilesystems(rep))
	}
	w.src.Snapshot("tank/top/enc", "s2")
	if rep := run(); rep.Failed() {
		t.Fatalf("second run: %+v", allFilesystems(rep))
	}
	assertSnapshots(t, w.dst, "backup/lock/top/enc", "s1", "s2")
	if enc, _, _ := w.dst.Encryption("backup/lock/top"); !w.dst.IsPlaceholder("backup/lock/top") || enc != "off" {
		t.Errorf("backup/lock/top: placeholder %v, encryption %s; want an unencrypted placeholder", w.dst.IsPlaceholder("backup/lock/top"), enc)
	}
	if _, root, key := w.dst.Encryption("backup/lock/top/enc"); root != "backup/lock/top/enc" || key != pdu.KeyUnavailable {
		t.Errorf("backup/lock/top/enc: root %s, key %s", root, key)
	}
}

// TestPlanRawIntoPlaceholderIsAProblem: zfs cannot replace a placeholder
// with a raw stream (receive -F refuses), so once an encrypted source that
// was a placeholder gets a snapshot, the plan says so and the way out.
func TestPlanRawIntoPlaceholderIsAProblem(t *testing.T) {
	w := mixedWorld(t)
	cfg := w.config()
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("%+v", allFilesystems(rep))
	}
	w.src.Snapshot("tank/bare", "s1")
	f := planOf(t, w, cfg)["tank/bare"]
	if !strings.Contains(f.Problem, "is a placeholder") || !strings.Contains(f.Problem, "zfs destroy backup/tank/bare") || len(f.Steps) != 0 {
		t.Errorf("plan: %+v", f)
	}
	if !w.dst.IsPlaceholder("backup/tank/bare") {
		t.Errorf("backup/tank/bare changed")
	}
}

// TestPlanEncryptedPlaceholderIsAProblem: a placeholder that inherited
// its parent's encryption cannot be replaced by any stream (zfs receive -F
// does not destroy an encrypted filesystem): the plan says so.
func TestPlanEncryptedPlaceholderIsAProblem(t *testing.T) {
	w := newWorld(t)
	w.src.CreateFilesystem("tank/a")
	w.src.Snapshot("tank/a", "s1")
	w.dst.CreateEncrypted("backup/enc")
	cfg := w.config()
	cfg.DestRoot = "backup/enc/tank"
	receiver := w.dst.Receiver(cfg.DestRoot, true)
	r := replication.NewReplication(cfg)
	r.Drive(context.Background(), w.sender(), receiver)
	if rep := r.Report(); rep.Failed() {
		t.Fatalf("%+v", allFilesystems(rep))
	}
	if !w.dst.IsPlaceholder("backup/enc/tank") {
		t.Fatal("backup/enc/tank is no placeholder")
	}
	w.src.Snapshot("tank", "s1")
	p, err := replication.Plan(context.Background(), cfg, w.sender(), receiver)
	if err != nil {
		t.Fatal(err)
	}
	if f := p.Filesystems[0]; !strings.Contains(f.Problem, "does not destroy an encrypted filesystem") || len(f.Steps) != 0 {
		t.Errorf("plan: %+v", f)
	}
}

// TestPlanShowsEncryption: the plan's text says how each encrypted
// filesystem is sent and each side's key status; its JSON has the keys
// for every filesystem.
func TestPlanShowsEncryption(t *testing.T) {
	w := mixedWorld(t)
	cfg := w.config()
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("%+v", allFilesystems(rep))
	}
	w.src.Snapshot("tank/enc", "s2")
	p, err := replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := p.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"tank/enc → backup/tank/enc\n    send: raw (zfs send -w): tank/enc is encrypted (encryption root tank/enc)",
		"    encryption: source encrypted (root tank/enc, key available); destination encrypted (root backup/tank/enc, key unavailable)\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "tank → backup/tank\n    send:") {
		t.Errorf("an unencrypted filesystem's plan speaks of encryption:\n%s", text.String())
	}
	js, _ := json.Marshal(p)
	var top struct {
		Filesystems []map[string]json.RawMessage `json:"filesystems"`
	}
	if err := json.Unmarshal(js, &top); err != nil {
		t.Fatal(err)
	}
	var enc map[string]json.RawMessage
	for _, f := range top.Filesystems {
		for _, k := range []string{"send", "send_reason", "source_encryption", "destination_encryption"} {
			if _, ok := f[k]; !ok {
				t.Errorf("plan JSON of %s lacks %q", f["filesystem"], k)
			}
		}
		if string(f["filesystem"]) == `"tank/enc"` {
			enc = f
		}
	}
	if got := string(enc["destination_encryption"]); got != `{"encrypted":true,"encryption_root":"backup/tank/enc","key_status":"unavailable"}` {
		t.Errorf("tank/enc destination_encryption %s", got)
	}
	if got := string(enc["send"]); got != `"raw"` {
		t.Errorf("tank/enc send %s", got)
	}
}

// TestDriveRawResumes: a raw transfer cut half-way resumes raw.
func TestDriveRawResumes(t *testing.T) {
	w := newWorld(t)
	w.src.CreateEncrypted("tank")
	w.src.SnapshotSize("tank", "s1", 1<<20)
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("stream broken")))
	rep := w.drive(t, w.config())
	f := allFilesystems(rep)["tank"]
	if rep.Failed() || len(f.Steps) != 1 || !f.Steps[0].Resumed {
		t.Fatalf("%+v", f)
	}
	if _, _, key := w.dst.Encryption("backup/tank"); key != pdu.KeyUnavailable {
		t.Errorf("backup/tank key %s after a resumed raw receive", key)
	}
}
