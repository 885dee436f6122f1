package endpoints

import (
	"errors"
	"fmt"
	"strings"
)

// Side is where a dataset lives: this machine (Host == "") or a host
// reached over ssh.
type Side struct {
	// User is the ssh login name; empty means ssh's default.
	User string
	// Host is the ssh host name or address (an IPv6 literal without
	// brackets); empty for the local machine.
	Host string
	// Dataset is the ZFS filesystem or volume name, e.g. `tank/data`.
	Dataset string
}

// Local reports whether the side is this machine.
func (s Side) Local() bool { return s.Host == "" }

// String writes the side the way ParseSide reads it.
func (s Side) String() string {
	if s.Host == "" {
		return s.Dataset
	}
	host := s.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if s.User != "" {
		host = s.User + "@" + host
	}
	return host + ":" + s.Dataset
}

// ParseSide reads a command-line side: `DATASET` (local),
// `[USER@]HOST:DATASET` or `[USER@][V6ADDR]:DATASET` (over ssh).
//
// The rule that tells them apart: the text before the first ':' names a
// host only if it contains no '/'. Pool names cannot contain ':', so
// `host:tank/x` is remote while `tank/v1.0:x` is a local dataset whose last
// component holds a colon. A bare pool name with a colon (`a:b`) is read as
// host `a`, dataset `b`.
func ParseSide(s string) (Side, error) {
	if s == "" {
		return Side{}, errors.New("empty dataset: give DATASET or [USER@]HOST:DATASET")
	}
	var side Side
	rest := s
	end := strings.Index(s, "]:")
	switch {
	case end >= 0 && strings.Contains(s[:end], "[") && !strings.Contains(s[:end], "/"):
		// [v6]:DATASET or user@[v6]:DATASET
		open := strings.IndexByte(s, '[')
		if open > 0 {
			if s[open-1] != '@' {
				return Side{}, fmt.Errorf("%q: write an IPv6 address as [ADDRESS]:DATASET or USER@[ADDRESS]:DATASET", s)
			}
			side.User = s[:open-1]
			if side.User == "" {
				return Side{}, fmt.Errorf("%q: empty user name before '@'; write USER@[ADDRESS]:DATASET or drop the '@'", s)
			}
		}
		side.Host = s[open+1 : end]
		if side.Host == "" {
			return Side{}, fmt.Errorf("%q: empty address between '[' and ']'", s)
		}
		if !strings.Contains(side.Host, ":") {
			return Side{}, fmt.Errorf("%q: brackets are only for IPv6 addresses; write %s:DATASET", s, side.Host)
		}
		rest = s[end+2:]
	default:
		colon := strings.IndexByte(s, ':')
		if colon >= 0 && !strings.Contains(s[:colon], "/") {
			host := s[:colon]
			rest = s[colon+1:]
			if at := strings.LastIndexByte(host, '@'); at >= 0 {
				side.User = host[:at]
				host = host[at+1:]
				if side.User == "" {
					return Side{}, fmt.Errorf("%q: empty user name before '@'; write USER@HOST:DATASET or drop the '@'", s)
				}
			}
			if host == "" {
				return Side{}, fmt.Errorf("%q: empty host before ':'; write HOST:DATASET, or DATASET for a local dataset", s)
			}
			side.Host = host
		}
	}
	if side.Host != "" {
		if err := checkHost(side.Host); err != nil {
			return Side{}, fmt.Errorf("%q: %w", s, err)
		}
		if err := checkUser(side.User); err != nil {
			return Side{}, fmt.Errorf("%q: %w", s, err)
		}
	}
	if err := CheckDatasetName(rest); err != nil {
		return Side{}, fmt.Errorf("%q: %w", s, err)
	}
	side.Dataset = rest
	return side, nil
}

func checkHost(h string) error {
	if strings.HasPrefix(h, "-") {
		return fmt.Errorf("host %q starts with '-', which ssh would read as an option", h)
	}
	if r, bad := unsafeLoginRune(h); bad {
		return fmt.Errorf("host %q contains %q, which is not allowed in a host name", h, r)
	}
	return nil
}

// checkUser checks a user name as checkHost checks a host: ssh refuses
// one that a shell would interpret (after connecting, so the run would
// only fail later and be retried), and zrep refuses it before anything
// runs. The empty name (none given) is fine.
func checkUser(u string) error {
	if strings.HasPrefix(u, "-") {
		return fmt.Errorf("user name %q starts with '-', which ssh would read as an option", u)
	}
	if r, bad := unsafeLoginRune(u); bad || strings.ContainsRune(u, ':') {
		if !bad {
			r = ':'
		}
		return fmt.Errorf("user name %q contains %q, which is not allowed in a login name", u, r)
	}
	return nil
}

// unsafeLoginRune finds the first rune of a host or user name that ssh or
// a shell would interpret: blanks and control characters, shell
// metacharacters, and the separators of [USER@]HOST:DATASET.
func unsafeLoginRune(s string) (rune, bool) {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("@/[]'\"\\`$;|&<>(){}*?!#", r) {
			return r, true
		}
	}
	return 0, false
}

// CheckDatasetName tells whether name is a filesystem or volume name ZFS
// accepts (not a snapshot or bookmark), and if not, what to change.
//
// ZFS allows letters, digits, and `_-.: ` (space included) in each
// '/'-separated component; zrep accepts exactly that.
func CheckDatasetName(name string) error {
	switch {
	case name == "":
		return errors.New("empty dataset name: give a dataset such as tank/data")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("dataset %q starts with '/': give the dataset name (tank/data), not its mountpoint", name)
	case strings.HasSuffix(name, "/"):
		return fmt.Errorf("dataset %q ends with '/': drop the trailing slash", name)
	case strings.ContainsAny(name, "@#"):
		return fmt.Errorf("dataset %q names a snapshot or bookmark: give the filesystem or volume (the part before '@' or '#')", name)
	case !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z'):
		// Also what keeps a name from reading as an option to zfs.
		return fmt.Errorf("dataset %q does not start with a letter, as ZFS pool names must", name)
	case len(name) > 255:
		return fmt.Errorf("dataset %q is longer than ZFS's limit of 255 characters", name)
	}
	for _, comp := range strings.Split(name, "/") {
		if comp == "" {
			return fmt.Errorf("dataset %q has an empty component ('//'): remove the doubled slash", name)
		}
		if comp == "." || comp == ".." {
			return fmt.Errorf("dataset %q has a component %q, which ZFS does not allow", name, comp)
		}
		for _, r := range comp {
			if !datasetRune(r) {
				return fmt.Errorf("dataset %q contains %q; ZFS names allow only letters, digits, space and _-.:", name, r)
			}
		}
	}
	return nil
}

// checkVersionName checks the part of a snapshot or bookmark name after
// '@' or '#', which has the same alphabet as a dataset component.
func checkVersionName(name string) error {
	if name == "" {
		return errors.New("empty snapshot name")
	}
	for _, r := range name {
		if !datasetRune(r) {
			return fmt.Errorf("snapshot name %q contains %q, which ZFS does not allow", name, r)
		}
	}
	return nil
}

func datasetRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '-' || r == '.' || r == ':' || r == ' '
}
