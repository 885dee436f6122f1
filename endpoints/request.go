package endpoints

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A remote request is data, not shell text. Every command zrep sends over
// ssh is
//
//	exec sh -c '<TEMPLATE>' zrep 'WORD' 'WORD' ...
//
// where TEMPLATE is one of the constant POSIX sh programs below (and, for
// the listing and the start-up, in argv.go beside their argvs), the same
// bytes every time, and every WORD is quoted by shellQuote. A template
// reads all that varies from its positional parameters; where it splits
// them into several argvs it evaluates only text it builds itself from
// digits and `${N}` references, never a word. On a plain host the login
// shell runs it as it comes. `zrep serve`, an ssh forced command, reads
// the same string from SSH_ORIGINAL_COMMAND, recognises the template,
// decodes the words with the exact inverse of shellQuote (ParseRequest)
// and checks each argv against its allow-list before it runs it: data can
// be checked exactly, shell text cannot.
//
// Each template runs under sh whatever the account's login shell (csh and
// fish included), on one line (csh takes no newline inside quotes), with
// LC_ALL=C so that zfs's messages, which classify reads, are in English;
// the pipeline, listing and start-up first write their shell's pid
// (pidMarker), and each writes the exit status of what it ran on a line of its own at the end of stderr
// (exitMarker) and exits with it.

// RequestKind is which template a request runs.
type RequestKind int

// The request kinds.
const (
	// RequestRun runs one argv: the words.
	RequestRun RequestKind = iota + 1
	// RequestPipeline runs argvs joined by pipes, after reporting the
	// shell's pid (pidMarker), each program reporting its own status
	// (stageMarker). The words are groups: a count, then that many words.
	RequestPipeline
	// RequestStartup is the start-up sequence (startupArgv): probe,
	// listing, and for a destination the parent check. The words are
	// groups as for RequestPipeline: the probe, the OpenZFS listing, the
	// legacy listing and, optionally, the parent check.
	RequestStartup
	// RequestKill ends a process group (killRequest): one word, the
	// group's pid.
	RequestKill
	// RequestListing lists a side (listing): its words are groups, the
	// native listing, the sources and the values of zrep's properties,
	// and the values the root inherits.
	RequestListing
	// RequestDelegation reads the account's uid, name and groups and what
	// zfs allow delegates (delegationArgv): its words are groups, zfs
	// allow of the dataset and, optionally, of its parent.
	RequestDelegation
)

// groupsPrelude reads the positional parameters as groups (a count, then
// that many words) into a1, a2, ...: each the text `"${N}" "${M}"...` of
// one argv's references, which `eval "env LC_ALL=C $a1"` then runs; b1,
// b2, ... are the numbers of their first words. k is the number of
// groups. A malformed request ends with status 2.
var groupsPrelude = `k=0; i=1; ` +
	`while [ "$i" -le "$#" ]; do ` +
	`eval "n=\${$i}"; ` +
	checkCount("n") +
	`[ "$((i+n))" -le "$#" ] || { echo "zrep: malformed request" >&2; exit 2; }; ` +
	`k=$((k+1)); r=; j=$((i+1)); eval "b$k=$j"; i=$((i+n)); ` +
	`while [ "$j" -le "$i" ]; do r="$r \"\${$j}\""; j=$((j+1)); done; ` +
	`eval "a$k=\$r"; i=$((i+1)); ` +
	`done; `

// checkCount ends the request with status 2 unless variable v holds a
// number of at most 5 digits without a leading zero, so that no word reaches arithmetic
// expansion. (No `[!0-9]`: csh would take the `!` for history.)
func checkCount(v string) string {
	return `case $` + v + ` in ""|0*|??????*) t=x;; *) t=$` + v + `;; esac; ` +
		`while [ -n "$t" ]; do case $t in [0-9]*) t=${t#?};; *) echo "zrep: malformed request" >&2; exit 2;; esac; done; `
}

// reportPid writes the shell's pid, which leads its process group, on
// stderr before anything runs, so that zrep can end the whole group
// (killRequest) when it gives up on the request.
const reportPid = `printf '` + pidMarker + `%s\n' "$$" >&2; `

// exitEpilogue reports $s, the request's status, and exits with it.
const exitEpilogue = `printf '\n` + exitMarker + `%s\n' "$s" >&2; exit "$s"`

// runTemplate runs its words as one argv.
const runTemplate = `env LC_ALL=C "$@"; s=$?; ` + exitEpilogue

// pipelineTemplate runs its groups joined by pipes. Each program's status
// line (`zrep-exit:NAME:CODE`, NAME being the program's first word) is
// written by the function z after it ends.
var pipelineTemplate = `z() { printf '\n` + stageMarker + `%s:%s\n' "$1" "$2" >&2; }; ` +
	groupsPrelude + reportPid +
	`c=; m=1; while [ "$m" -le "$k" ]; do ` +
	`eval "r=\$a$m; f=\$b$m"; ` +
	`[ -z "$c" ] || c="$c | "; c="$c{ env LC_ALL=C$r; z \"\${$f}\" \$?; }"; m=$((m+1)); ` +
	`done; ` +
	`eval "$c"; s=$?; ` + exitEpilogue

// killTemplate ends the process group whose pid is its one word,
// stopped programs included (SIGKILL also ends a process stopped by
// SIGSTOP).
var killTemplate = `n=$1; ` + checkCount("n") +
	`env LC_ALL=C kill -s KILL -- "-$1"; s=$?; ` + exitEpilogue

// templates are the request kinds' programs, by kind.
var templates = map[RequestKind]string{
	RequestRun:      runTemplate,
	RequestPipeline: pipelineTemplate,
	RequestStartup:  startupTemplate,
	RequestKill:     killTemplate,
	RequestListing:  listingTemplate,

	RequestDelegation: delegationTemplate,
}

// requestKinds are the kinds, in the order ParseRequest tries them.
var requestKinds = []RequestKind{RequestRun, RequestPipeline, RequestStartup, RequestKill, RequestListing, RequestDelegation}

// Request is one remote command as data: a template and its words.
type Request struct {
	Kind  RequestKind
	Words []string
}

// runRequest runs argv.
func runRequest(argv []string) Request {
	return Request{Kind: RequestRun, Words: argv}
}

// pipelineRequest runs programs joined by pipes.
func pipelineRequest(programs [][]string) Request {
	return Request{Kind: RequestPipeline, Words: groupWords(programs)}
}

// killRequest ends the remote process group pid.
func killRequest(pid int) Request {
	return Request{Kind: RequestKill, Words: []string{strconv.Itoa(pid)}}
}

// groupWords lays argvs out as groups: each its length, then its words.
func groupWords(argvs [][]string) []string {
	var words []string
	for _, argv := range argvs {
		words = append(words, strconv.Itoa(len(argv)))
		words = append(words, argv...)
	}
	return words
}

// Groups splits the words of a pipeline or start-up request into argvs,
// as the template's prelude does.
func (r Request) Groups() ([][]string, error) {
	var argvs [][]string
	for i := 0; i < len(r.Words); {
		n, err := strconv.Atoi(r.Words[i])
		if err != nil || n < 1 || r.Words[i][0] == '0' || n > len(r.Words)-i-1 {
			return nil, fmt.Errorf("malformed request: word %d (%q) is not the length of the argv after it", i+1, r.Words[i])
		}
		argvs = append(argvs, r.Words[i+1:i+1+n])
		i += 1 + n
	}
	return argvs, nil
}

// requestPrefix is what every request of kind starts with.
func requestPrefix(kind RequestKind) string {
	return "exec sh -c " + shellQuote(templates[kind]) + " zrep"
}

// String is the request as ssh hands it to the remote shell.
func (r Request) String() string {
	var b strings.Builder
	b.WriteString(requestPrefix(r.Kind))
	for _, w := range r.Words {
		b.WriteByte(' ')
		b.WriteString(shellQuote(w))
	}
	return b.String()
}

// Argv is the request as a local argv, the same template run by sh.
func (r Request) Argv() []string {
	return append([]string{"sh", "-c", templates[r.Kind], "zrep"}, r.Words...)
}

// Limits of a request that ParseRequest accepts. Linux passes no single
// argument or environment variable longer than 128 KiB, so that a login
// shell is never handed a longer command anyway, and sshd cannot put one
// in SSH_ORIGINAL_COMMAND.
const (
	MaxRequestBytes = 120 << 10
	MaxRequestWords = 16 << 10
)

// ErrMalformedRequest is what ParseRequest's errors wrap.
var ErrMalformedRequest = errors.New("not a zrep request")

// ParseRequest reads a command line that Request.String wrote: one of the
// templates, quoted, then words each quoted by shellQuote and preceded by
// one space. It is the exact inverse: anything else (another program, a
// word outside quotes, two spaces, a trailing newline, a `;`) is an error.
func ParseRequest(line string) (Request, error) {
	if len(line) > MaxRequestBytes {
		return Request{}, fmt.Errorf("%w: the command line is %d bytes long, more than the %d allowed", ErrMalformedRequest, len(line), MaxRequestBytes)
	}
	var req Request
	for _, kind := range requestKinds {
		if rest, ok := strings.CutPrefix(line, requestPrefix(kind)); ok && (rest == "" || rest[0] == ' ') {
			req.Kind, line = kind, rest
			break
		}
	}
	if req.Kind == 0 {
		return Request{}, fmt.Errorf("%w: it does not start with one of zrep's request templates", ErrMalformedRequest)
	}
	for line != "" {
		if len(req.Words) == MaxRequestWords {
			return Request{}, fmt.Errorf("%w: more than %d words", ErrMalformedRequest, MaxRequestWords)
		}
		if !strings.HasPrefix(line, " '") {
			return Request{}, fmt.Errorf("%w: word %d is not one space and a single-quoted word", ErrMalformedRequest, len(req.Words)+1)
		}
		word, rest, err := unquoteWord(line[1:])
		if err != nil {
			return Request{}, fmt.Errorf("%w: word %d: %v", ErrMalformedRequest, len(req.Words)+1, err)
		}
		req.Words = append(req.Words, word)
		line = rest
	}
	if len(req.Words) == 0 {
		return Request{}, fmt.Errorf("%w: no words", ErrMalformedRequest)
	}
	return req, nil
}

// unquoteWord reads one shellQuote word from the start of s: a quote,
// text without a quote, a quote, then any number of (backslash, quote,
// quote, text without a quote, quote). It returns the word and what
// follows it.
func unquoteWord(s string) (word, rest string, err error) {
	var b strings.Builder
	if !strings.HasPrefix(s, "'") {
		return "", "", errors.New("does not start with a quote")
	}
	s = s[1:]
	for {
		end := strings.IndexByte(s, '\'')
		if end < 0 {
			return "", "", errors.New("unterminated quote")
		}
		b.WriteString(s[:end])
		s = s[end+1:]
		if !strings.HasPrefix(s, `\''`) {
			return b.String(), s, nil
		}
		b.WriteByte('\'')
		s = s[3:]
	}
}
