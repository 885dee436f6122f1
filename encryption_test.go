package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// TestStatusShowsKeyStatus: zrep status shows, per filesystem, whether it
// is encrypted and its key status (a raw backup on a host without keys:
// unavailable), in text and in JSON.
func TestStatusShowsKeyStatus(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	fss := []*pdu.Filesystem{
		{Path: "b/plain", Encryption: "off", Versions: []*pdu.FilesystemVersion{snap("s", 1, now)}},
		{Path: "b/raw", Encryption: "aes-256-gcm", EncryptionRoot: "b/raw", KeyStatus: pdu.KeyUnavailable,
			Versions: []*pdu.FilesystemVersion{snap("s", 2, now)}},
	}
	rep := judgeStatus("b", fss, now, statusConfig{prefix: "zrep_"})
	var text bytes.Buffer
	if err := rep.writeText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(text.String(), "\n")
	if !strings.Contains(lines[0], "  KEY  ") || !strings.Contains(lines[1], "  -  ") || !strings.Contains(lines[2], "  unavailable  ") {
		t.Errorf("status text:\n%s", text.String())
	}
	js, _ := json.Marshal(rep.Filesystems)
	for _, want := range []string{
		`"filesystem":"b/plain",`, `"encrypted":false,"encryption_root":"","key_status":""`,
		`"encrypted":true,"encryption_root":"b/raw","key_status":"unavailable"`,
	} {
		if !strings.Contains(string(js), want) {
			t.Errorf("status JSON lacks %s: %s", want, js)
		}
	}
}

// TestPlanSaysCompressingRawStreamsOnlyCostsCPU: where the link
// compresses and a filesystem goes raw, the plan's link line says that
// compressing encrypted data only costs CPU; otherwise it says nothing.
func TestPlanSaysCompressingRawStreamsOnlyCostsCPU(t *testing.T) {
	raw := &replication.PlanReport{Filesystems: []*replication.FilesystemPlan{{Send: replication.SendPlain}, {Send: replication.SendRaw}}}
	plain := &replication.PlanReport{Filesystems: []*replication.FilesystemPlan{{Send: replication.SendPlain}}}
	remote, local := endpoints.Side{Host: "h", Dataset: "tank/a"}, endpoints.Side{Dataset: "backup/a"}
	for _, c := range []struct {
		name string
		j    job
		plan *replication.PlanReport
		want bool
	}{
		{"compressed link, raw", job{src: remote, dst: local, link: link{codec: endpoints.CodecZstd}}, raw, true},
		{"compressed link, nothing raw", job{src: remote, dst: local, link: link{codec: endpoints.CodecZstd}}, plain, false},
		{"no compression", job{src: remote, dst: local, link: link{codec: endpoints.CodecNone}}, raw, false},
		{"local to local", job{src: local, dst: endpoints.Side{Dataset: "backup/b"}, link: link{codec: endpoints.CodecZstd}}, raw, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			note := rawCompressionNote(&c.j, c.plan)
			if got := strings.Contains(note, "only costs CPU"); got != c.want {
				t.Errorf("note %q, want one: %v", note, c.want)
			}
		})
	}
}
