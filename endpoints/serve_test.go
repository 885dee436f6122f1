package endpoints

import (
	"errors"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

// fakeFacts answers a served check's questions from maps.
type fakeFacts struct {
	placeholders map[string]bool
	tokens       map[string]string
	groups       map[int]bool
}

func (f fakeFacts) Placeholder(fs string) (bool, error) { return f.placeholders[fs], nil }
func (f fakeFacts) ResumeTarget(tok string) (string, error) {
	if t, ok := f.tokens[tok]; ok {
		return t, nil
	}
	return "", errors.New("cannot resume send: invalid token")
}
func (f fakeFacts) ServedGroup(pid int) error {
	if f.groups[pid] {
		return nil
	}
	return errors.New("it is not a stream that zrep serve started")
}

func must(argv []string, err error) []string {
	if err != nil {
		panic(err)
	}
	return argv
}

func mustAll(argvs [][]string, err error) [][]string {
	if err != nil {
		panic(err)
	}
	return argvs
}

func TestServePolicy(t *testing.T) {
	recv := ServePolicy{Role: ReceiveOnly, Dataset: "backup/web1"}
	recvPrune := recv
	recvPrune.AllowPrune = true
	recvRollback := recv
	recvRollback.AllowRollback = true
	send := ServePolicy{Role: SendOnly, Dataset: "tank/data"}
	sendAll := send
	sendAll.AllowPrune, sendAll.AllowSnapshot = true, true

	facts := fakeFacts{
		placeholders: map[string]bool{"backup/web1/ph": true},
		tokens:       map[string]string{"1-aa-bb": "tank/data/a@s1", "1-cc-dd": "tank/other@s1"},
		groups:       map[int]bool{4242: true},
	}
	run := runRequest
	recvReq := &pdu.ReceiveReq{Filesystem: "backup/web1/a", Resumable: true}
	recvArgv := must(receiveArgv(recvReq, openZFS2))
	sendArgv1 := must(sendArgv(&pdu.SendReq{Filesystem: "tank/data/a", From: snap("s1"), To: snap("s2"), Intermediates: true, Options: pdu.SendOptions{Raw: true}}, false))
	estimate := must(sendArgv(&pdu.SendReq{Filesystem: "tank/data/a", To: snap("s2")}, true))

	for _, c := range []struct {
		name   string
		policy ServePolicy
		req    Request
		refuse string // "" allowed, else a fragment of the refusal
	}{
		// What zrep's own runs send.
		{"start-up of a push", recv, startupArgv("backup/web1", true, "backup", propUserRefs).req, ""},
		{"start-up below", recv, startupArgv("backup/web1/x", true, "backup/web1").req, ""},
		{"start-up of a pull", send, startupArgv("tank/data", true, "").req, ""},
		{"listing", recv, newListing("backup/web1", true, openZFS2, propUserRefs).request(), ""},
		{"legacy listing", send, newListing("tank/data/a", false, Capabilities{}).request(), ""},
		{"one user property", recv, run(must(userValueArgv("backup/web1/a", propPlaceholder))), ""},
		{"guids before a destroy", recvPrune, run(must(guidsArgv("backup/web1/a", []*pdu.FilesystemVersion{snap("z1"), snap("z2")}))), ""},
		{"versions", recv, run(versionsArgv("backup/web1/a", openZFS2)), ""},
		{"parent check", recv, run(typeArgv("backup")), ""},
		{"receive", recv, run(recvArgv), ""},
		{"receive stream", recv, pipelineRequest([][]string{recvArgv}), ""},
		{"decompressed receive", recv, pipelineRequest([][]string{CodecZstd.decompressArgv(), recvArgv}), ""},
		{"buffered receive", recv, pipelineRequest([][]string{bufferArgv(DefaultBuffer), recvArgv}), ""},
		{"buffered, decompressed receive", recv, pipelineRequest([][]string{bufferArgv(DefaultBuffer), CodecZstd.decompressArgv(), recvArgv}), ""},
		{"the probe of the buffer", recv, run(bufferVersionArgv), ""},
		{"receive with props", recv, run(must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/web1/a", Options: pdu.ReceiveOptions{Set: []pdu.Property{{Name: "compression", Value: "lz4"}, {Name: "mountpoint", Value: "none"}}, Exclude: []string{"mountpoint"}}}, openZFS2))), ""},
		{"receive -F into a placeholder", recv, run(must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/web1/ph", OverwritePlaceholder: true}, openZFS2))), ""},
		{"discard partial state", recv, run(must(abortReceiveArgv("backup/web1/a"))), ""},
		{"create placeholder", recv, run(must(createPlaceholderArgv("backup/web1/p", false))), ""},
		{"create placeholder below a locked parent", recv, run(must(createPlaceholderArgv("backup/web1/p", true))), ""},
		{"create with other options", recv, run([]string{"zfs", "create", "-o", "canmount=off", "-o", "zrep:placeholder=on", "-o", "mountpoint=/etc", "backup/web1/p"}), "only a placeholder"},
		{"clear placeholder", recv, run(mustAll(clearPlaceholderArgvs("backup/web1/p", pdu.ReceiveOptions{}))[0]), ""},
		{"mountable again", recv, run(mustAll(clearPlaceholderArgvs("backup/web1/p", pdu.ReceiveOptions{}))[1]), ""},
		{"codec probe", recv, run(CodecZstd.versionArgv()), ""},
		{"delegations", recv, run([]string{"zfs", "allow", "backup/web1"}), ""},
		{"the parent's delegations", recv, run([]string{"zfs", "allow", "backup"}), ""},
		{"receive through sudo -n", recv, pipelineRequest([][]string{CodecZstd.decompressArgv(), append([]string{"sudo", "-n"}, recvArgv...)}), ""},
		{"listing request through sudo -n", recv, func() Request {
			l := newListing("backup/web1", true, openZFS2)
			var g [][]string
			for _, a := range [][]string{l.list, l.sources, l.values, l.rootValues} {
				g = append(g, append([]string{"sudo", "-n"}, a...))
			}
			return Request{Kind: RequestListing, Words: groupWords(g)}
		}(), ""},
		{"listing through sudo -n", send, run(append([]string{"sudo", "-n"}, listArgv("tank/data", true, openZFS2)...)), ""},
		{"kill own stream", recv, killRequest(4242), ""},
		{"prune with --allow-prune", recvPrune, run(destroyListArgv("backup/web1/a", snap("z1"), snap("z2"))), ""},
		{"rollback with --allow-rollback", recvRollback, run(must(rollbackArgv("backup/web1/a", snap("s1")))), ""},
		{"receive -F with --allow-rollback", recvRollback, run(must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/web1/a", Rollback: true}, openZFS2))), ""},
		{"send", send, pipelineRequest([][]string{sendArgv1, CodecLZ4.compressArgv()}), ""},
		{"estimate", send, run(estimate), ""},
		{"send with --compress auto", send, pipelineRequest([][]string{sendArgv1, CodecAuto.compressArgv()}), ""},
		{"buffered send", send, pipelineRequest([][]string{sendArgv1, bufferArgv(MaxBuffer)}), ""},
		{"compressed, buffered send", send, pipelineRequest([][]string{sendArgv1, CodecLZ4.compressArgv(), bufferArgv(MinBuffer)}), ""},
		{"resume", send, pipelineRequest([][]string{must(sendArgv(&pdu.SendReq{ResumeToken: "1-aa-bb"}, false))}), ""},
		{"resume info", send, run(must(resumeInfoArgv("1-aa-bb"))), ""},
		{"cursor bookmark", send, run(must(bookmarkArgv("tank/data/a", snap("s2"), pdu.CursorName("id", 42)))), ""},
		{"old cursor destroyed", send, run(must(destroyArgv("tank/data/a", &pdu.FilesystemVersion{Type: pdu.Bookmark, Name: pdu.CursorName("id", 41)}))), ""},
		{"hold", send, run(must(holdArgv("tank/data/a", snap("s2"), "zrep_id"))), ""},
		{"release", send, run(must(releaseArgv("tank/data/a", []*pdu.FilesystemVersion{snap("s1")}, "zrep_id"))), ""},
		{"holds", send, run(must(holdsArgv("tank/data/a", []*pdu.FilesystemVersion{snap("s1")}))), ""},
		{"snapshot with --allow-snapshot", sendAll, run([]string{"zfs", "snapshot", "-r", "tank/data@zrep_20261130T104500Z"}), ""},
		{"source prune with --allow-prune", sendAll, run([]string{"zfs", "destroy", "tank/data/a@z1,z2"}), ""},

		// What a hostile client tries.
		{"destroy", recv, run([]string{"zfs", "destroy", "backup/web1/a@s1"}), "zfs destroy is not allowed under --receive-only backup/web1"},
		{"destroy -r of the root", recv, run([]string{"zfs", "destroy", "-r", "backup"}), "zfs destroy is not allowed"},
		{"destroy -r with --allow-prune", recvPrune, run([]string{"zfs", "destroy", "-r", "backup/web1@s1"}), "as one operand without options"},
		{"destroy a filesystem with --allow-prune", recvPrune, run([]string{"zfs", "destroy", "backup/web1/a"}), "never allowed"},
		{"destroy a range with --allow-prune", recvPrune, run([]string{"zfs", "destroy", "backup/web1/a@a%z"}), "contains"},
		{"destroy elsewhere with --allow-prune", recvPrune, run([]string{"zfs", "destroy", "backup/web10@s1"}), "outside backup/web1"},
		{"destroy a bookmark on receive-only", recvPrune, run([]string{"zfs", "destroy", "backup/web1#zrep_x"}), "bookmark"},
		{"destroy another bookmark on send-only", send, run([]string{"zfs", "destroy", "tank/data#mine"}), "bookmark"},
		{"rollback", recv, run(must(rollbackArgv("backup/web1/a", snap("s1")))), "--allow-rollback"},
		{"receive -F over a backup", recv, run(must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/web1/a", Rollback: true}, openZFS2))), "not a placeholder"},
		{"receive -F elsewhere", recvRollback, run([]string{"zfs", "receive", "-u", "-F", "backup/web2"}), "outside"},
		{"receive into another dataset", recv, run([]string{"zfs", "receive", "-u", "backup/web2/a"}), "outside backup/web1"},
		{"receive into a sibling with the prefix", recv, run([]string{"zfs", "receive", "-u", "backup/web1x"}), "outside"},
		{"receive into the parent", recv, run([]string{"zfs", "receive", "-u", "backup"}), "outside"},
		{"receive into dot-dot", recv, run([]string{"zfs", "receive", "-u", "backup/web1/../web2"}), "component"},
		{"receive -d", recv, run([]string{"zfs", "receive", "-u", "-d", "backup/web1"}), "option \"-d\""},
		{"receive option after the operand", recv, run([]string{"zfs", "receive", "-u", "backup/web1/a", "-F"}), "after the operands"},
		{"receive bundled options", recv, run([]string{"zfs", "receive", "-uF", "backup/web1/a"}), "option \"-uF\""},
		{"receive mounted", recv, run([]string{"zfs", "receive", "backup/web1/a"}), "-u"},
		{"receive setting the placeholder mark", recv, run([]string{"zfs", "receive", "-u", "-o", "zrep:placeholder=on", "backup/web1/a"}), "zrep:placeholder=on"},
		{"receive mounting over /etc", recv, run([]string{"zfs", "receive", "-u", "-o", "mountpoint=/etc", "backup/web1/a"}), "mountpoint=/etc"},
		{"receive -o smuggling an option", recv, run([]string{"zfs", "receive", "-u", "-o", "-F", "backup/web1/a"}), "not PROPERTY=VALUE"},
		{"receive a name with spaces and quotes", recv, run([]string{"zfs", "receive", "-u", "backup/web1/a' -F 'b"}), "contains"},
		{"receive two operands", recv, run([]string{"zfs", "receive", "-u", "backup/web1/a", "backup/web2"}), "2 operands"},
		{"send on receive-only", recv, run([]string{"zfs", "send", "backup/web1/a@s1"}), "zfs send is not allowed under --receive-only"},
		{"receive on send-only", send, run([]string{"zfs", "receive", "-u", "tank/data/x"}), "zfs receive is not allowed under --send-only"},
		{"send elsewhere", send, run([]string{"zfs", "send", "tank/other@s1"}), "outside tank/data"},
		{"send -R", send, run([]string{"zfs", "send", "-R", "tank/data@s1"}), "option \"-R\""},
		{"send from elsewhere", send, run([]string{"zfs", "send", "-i", "tank/other@s0", "tank/data@s1"}), "outside"},
		{"resume of another dataset", send, run([]string{"zfs", "send", "-t", "1-cc-dd"}), "outside tank/data"},
		{"resume of a bad token", send, run([]string{"zfs", "send", "-t", "1-ee-ff"}), "invalid token"},
		{"snapshot without --allow-snapshot", send, run([]string{"zfs", "snapshot", "tank/data@x"}), "--allow-snapshot"},
		{"snapshot on receive-only", recv, run([]string{"zfs", "snapshot", "backup/web1@x"}), "not allowed under --receive-only"},
		{"release on receive-only", recv, run([]string{"zfs", "release", "zrep_id", "backup/web1@x"}), "not allowed under --receive-only"},
		{"release of another tag", send, run([]string{"zfs", "release", "keep", "tank/data@x"}), "zrep's own tags"},
		{"prune source without --allow-prune", send, run([]string{"zfs", "destroy", "tank/data@z1"}), "--allow-prune"},
		{"set a property", recv, run([]string{"zfs", "set", "readonly=off", "backup/web1"}), "only zrep:placeholder=off"},
		{"set the mark on", recv, run([]string{"zfs", "set", "zrep:placeholder=on", "backup/web1/a"}), "only zrep:placeholder=off"},
		{"create a filesystem", recv, run([]string{"zfs", "create", "backup/web1/x"}), "only a placeholder"},
		{"get elsewhere", recv, run([]string{"zfs", "get", "-H", "all", "backup/web2"}), "outside"},
		{"get of the whole pool", recv, run([]string{"zfs", "get", "-r", "all", "backup"}), "outside"},
		{"list everything", recv, run([]string{"zfs", "list"}), "at least one dataset"},
		{"sh -c", recv, run([]string{"sh", "-c", "zfs destroy -r backup"}), "sh is not allowed"},
		{"granting a delegation", recv, run([]string{"zfs", "allow", "-u", "evil", "destroy", "backup/web1"}), "never granting"},
		{"delegations elsewhere", recv, run([]string{"zfs", "allow", "backup/web2"}), "outside"},
		{"destroy through sudo", recv, run([]string{"sudo", "-n", "zfs", "destroy", "-r", "backup"}), "zfs destroy is not allowed"},
		{"sudo of a shell", recv, run([]string{"sudo", "-n", "sh", "-c", "id"}), "sudo is not allowed"},
		{"sudo that may ask", recv, run([]string{"sudo", "zfs", "list", "backup/web1"}), "sudo is not allowed"},
		{"env", recv, run([]string{"env", "zfs", "destroy", "backup"}), "env is not allowed"},
		{"zfs by path", recv, run([]string{"/sbin/zfs", "destroy", "backup"}), `"/sbin/zfs" is not allowed`},
		{"zpool", recv, run([]string{"zpool", "destroy", "backup"}), "zpool is not allowed"},
		{"codec with other arguments", recv, run([]string{"zstd", "-d", "-o", "/etc/passwd"}), "--version"},
		{"pipeline into a shell", recv, pipelineRequest([][]string{{"sh", "-c", "id"}, recvArgv}), "codecs"},
		{"a shell as one program", recv, pipelineRequest([][]string{{"sh", "-c", "id"}}), "sh is not allowed"},
		{"a command as a one-program pipeline", recv, pipelineRequest([][]string{must(abortReceiveArgv("backup/web1/a"))}), ""},
		{"buffer on the wrong end of a receive", recv, pipelineRequest([][]string{recvArgv, bufferArgv(DefaultBuffer)}), "runs zfs receive, not \"mbuffer\""},
		{"buffer on the wrong end of a send", send, pipelineRequest([][]string{bufferArgv(DefaultBuffer), sendArgv1}), "runs zfs send, not \"mbuffer\""},
		{"buffer larger than 1 GiB", recv, pipelineRequest([][]string{{"mbuffer", "-q", "-s", "128k", "-m", "1048577k"}, recvArgv}), "codecs"},
		{"buffer with other options", recv, pipelineRequest([][]string{{"mbuffer", "-q", "-s", "128k", "-m", "16384k", "-o", "/etc/passwd"}, recvArgv}), "codecs"},
		{"buffer writing a file", recv, pipelineRequest([][]string{{"mbuffer", "-q", "-s", "128k", "-o", "/etc/pass", "16384k"}, recvArgv}), "codecs"},
		{"buffer size with a sign", recv, pipelineRequest([][]string{{"mbuffer", "-q", "-s", "128k", "-m", "+16384k"}, recvArgv}), "codecs"},
		{"buffer alone", recv, pipelineRequest([][]string{bufferArgv(DefaultBuffer)}), "mbuffer runs here only"},
		{"buffer before a destroy", recvPrune, pipelineRequest([][]string{bufferArgv(DefaultBuffer), {"zfs", "destroy", "backup/web1@a"}}), "runs zfs receive"},
		{"two buffers", recv, pipelineRequest([][]string{bufferArgv(DefaultBuffer), bufferArgv(DefaultBuffer), recvArgv}), "codecs"},
		{"mbuffer with other arguments", recv, run([]string{"mbuffer", "-i", "/etc/shadow", "-o", "/tmp/x"}), "mbuffer runs here only"},
		{"pipeline of three", recv, pipelineRequest([][]string{CodecZstd.decompressArgv(), CodecZstd.decompressArgv(), recvArgv}), "at most one codec"},
		{"pipeline of a destroy", recv, pipelineRequest([][]string{{"zfs", "destroy", "backup/web1@a"}}), "zfs destroy is not allowed"},
		{"pipeline of a destroy through a codec", recvPrune, pipelineRequest([][]string{CodecZstd.decompressArgv(), {"zfs", "destroy", "backup/web1@a"}}), "runs zfs receive"},
		{"start-up of a shell", recv, func() Request {
			st := startupArgv("backup/web1", true, "backup")
			g, _ := st.req.Groups()
			g[6] = []string{"sh", "-c", "id"}
			return Request{Kind: RequestStartup, Words: groupWords(g)}
		}(), "runs zfs get or zfs list"},
		{"start-up too short", recv, Request{Kind: RequestStartup, Words: groupWords([][]string{versionArgv(), {"zfs", "get", "all", "backup/web1"}})}, "9 or 10 commands"},
		{"listing elsewhere", recv, newListing("backup/web2", true, openZFS2).request(), "outside"},
		{"listing of a shell", recv, Request{Kind: RequestListing, Words: groupWords([][]string{{"sh", "-c", "id"}, {"zfs", "get", "all", "backup/web1"}, {"zfs", "get", "all", "backup/web1"}, {"zfs", "get", "all", "backup/web1"}})}, "runs zfs get or zfs list"},
		{"start-up listing elsewhere", recv, startupArgv("backup", true, "").req, "outside"},
		{"a hook's command", send, pipelineRequest([][]string{hookArgv(Hook{Name: "pre-snapshot", Command: "zfs destroy -r tank"})}), "env is not allowed"},
		{"kill of another process", recv, killRequest(1234), "not a stream"},
		{"kill of two", recv, Request{Kind: RequestKill, Words: []string{"4242", "1"}}, "one process id"},
		{"malformed groups", recv, Request{Kind: RequestPipeline, Words: []string{"3", "zfs"}}, "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(c.req, facts)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && err == nil:
				t.Fatalf("allowed %v %q", c.req.Kind, c.req.Words)
			case c.refuse != "" && (!IsRefusal(err) || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("refused with %q, want it to say %q", err, c.refuse)
			}
		})
	}
}

// Every rule of the table names a role the check agrees with.
func TestServeTableNamesEachCommandOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range serveTable {
		if seen[r.command] {
			t.Errorf("%s twice", r.command)
		}
		seen[r.command] = true
	}
}

func destroyListArgv(fs string, snaps ...*pdu.FilesystemVersion) []string {
	argvs, _, err := destroyListArgvs(fs, snaps)
	if err != nil || len(argvs) != 1 {
		panic(err)
	}
	return argvs[0]
}
