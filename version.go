package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// buildInfo is what zrep knows about its own build.
type buildInfo struct {
	version, commit, goVersion string
	modified                   bool
}

// readBuildInfo combines the -ldflags values with what the Go toolchain
// recorded in the binary (the module version, the VCS revision).
func readBuildInfo() buildInfo {
	b := buildInfo{version: version, commit: commit, goVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.commit == "" {
					b.commit = s.Value
				}
			case "vcs.modified":
				b.modified = s.Value == "true"
			}
		}
		if b.version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.version = bi.Main.Version
		}
	}
	if b.version == "" {
		b.version = "dev"
	}
	if b.commit == "" {
		b.commit = "unknown"
	}
	return b
}

// versionText is what zrep version prints.
func versionText() string {
	b := readBuildInfo()
	c := b.commit
	if b.modified {
		c += " (with uncommitted changes)"
	}
	return fmt.Sprintf("zrep %s\ncommit %s\n%s %s/%s\n", b.version, c, b.goVersion, runtime.GOOS, runtime.GOARCH)
}
