package replication_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The engine stays pure: it runs no commands, opens no connections and
// knows nothing of the CLI or the real endpoints.
func TestEngineImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/zrep/zrep/replication", "github.com/zrep/zrep/replication/memzfs", "github.com/zrep/zrep/replication/sidetest", "github.com/zrep/zrep/pdu").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"os/exec", "net", "os/signal", "github.com/zrep/zrep/endpoints", "github.com/urfave/cli", "github.com/schollz/progressbar"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("replication or pdu depends on %s", dep)
			}
		}
	}
}
