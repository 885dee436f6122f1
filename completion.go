package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// manDescription (markdown, as urfave/cli renders it) and manTail (roff)
// complete the man page rendered from the command definitions with what an
// operator looks up there.
const manDescription = `zrep replicates ZFS filesystems and volumes, with their snapshots, from a
source to a destination. Each side is the local machine or a host reached over
ssh (**[USER@]HOST:DATASET**). One invocation plans, sends, retries what
broke, prints a Report and exits with a status that says how it went.

zrep is not bolthole's zrep, an older ZFS replication script of the same name;
the two share no commands, options or properties.

Every flag can also be given as an environment variable **ZREP_**_FLAG_
(**--ssh-port** is **ZREP_SSH_PORT**); the flag wins.
`

const manTail = `.SH EXIT STATUS
.PP
\fBrun\fP and \fBplan\fP: 0 every filesystem is up to date (or has a plan);
1 a filesystem failed (or has a permanent conflict); 2 usage error, nothing
was contacted; 3 planning (listing) failed after every retry; 4 another run
holds the lock for this destination; 124 \fB--timeout\fP expired; 130
interrupted by SIGINT or SIGTERM.
.PP
\fBstatus --max-age\fP, a Nagios/Icinga plugin: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN (cannot list, or a usage error).
.PP
\fBserve\fP: 126 the request was refused (the reason is on stderr); otherwise
the status of the zfs command it ran.
.SH FILES
.TP
\fI/etc/zrep/INSTANCE.env\fP
the arguments of the systemd service \fBzrep@INSTANCE.service\fP, started by
\fBzrep@INSTANCE.timer\fP: \fBZREP_ARGS\fP and any \fBZREP_\fP\fIFLAG\fP variables.
.TP
\fI/run/lock/zrep\fP
the per-destination lock files of \fBrun\fP (\fB--lock-dir\fP).
.SH EXAMPLES
.PP
Replicate a tree to another host every hour from cron, mailing only failures:
.PP
.EX
17 * * * * root zrep run -r -q --timeout 50m tank/home root@nas:backup/home
.EE
.PP
Check the copy from a monitoring system:
.PP
.EX
zrep status -r --max-age 26h --warn-age 2h root@nas:backup/home
.EE
.PP
Let a host push its backups with a key that can add snapshots but not remove
or overwrite one, in the backup host's \fI~/.ssh/authorized_keys\fP:
.PP
.EX
command="zrep serve --receive-only backup/web1",restrict ssh-ed25519 AAAA... root@web1
.EE
.SH SEE ALSO
\fBzfs\fP(8), \fBzfs-send\fP(8), \fBzfs-receive\fP(8), \fBssh\fP(1), \fBsystemd.timer\fP(5)
`

// manPage renders the man page, section 8, from app's definitions.
func manPage(app *cli.App) (string, error) {
	app.Description = manDescription
	page, err := app.ToManWithSection(8)
	if err != nil {
		return "", err
	}
	return page + manTail, nil
}

// completionFlag is one flag as the completions need it.
type completionFlag struct {
	names       []string // with dashes: --recursive, -r
	usage       string   // without the placeholder's backquotes
	placeholder string   // "" for a switch
	repeatable  bool
}

// completionCommand is one visible command with its flags.
type completionCommand struct {
	name, usage string
	flags       []completionFlag
	datasets    bool // its arguments are datasets
}

func completionCommands(app *cli.App) []completionCommand {
	var cmds []completionCommand
	for _, c := range app.VisibleCommands() {
		cc := completionCommand{name: c.Name, usage: c.Usage,
			datasets: strings.Contains(c.ArgsUsage, "DATASET") || strings.Contains(c.ArgsUsage, "SRC")}
		for _, f := range c.VisibleFlags() {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			cf := completionFlag{usage: strings.ReplaceAll(df.GetUsage(), "`", "")}
			if df.TakesValue() {
				cf.placeholder = "VALUE"
				if _, rest, ok := strings.Cut(df.GetUsage(), "`"); ok {
					cf.placeholder, _, _ = strings.Cut(rest, "`")
				}
			}
			if sf, ok := f.(cli.DocGenerationSliceFlag); ok && sf.IsSliceFlag() {
				cf.repeatable = true
			}
			for _, n := range f.Names() {
				if len(n) == 1 {
					cf.names = append(cf.names, "-"+n)
				} else {
					cf.names = append(cf.names, "--"+n)
				}
			}
			cc.flags = append(cc.flags, cf)
		}
		cmds = append(cmds, cc)
	}
	return cmds
}

// takesPath says whether a flag's value is a file or directory name.
func (f completionFlag) takesPath() bool {
	switch f.placeholder {
	case "FILE", "DIR", "PATH":
		return true
	}
	return false
}

// bashCompletion is a bash completion script for app: commands, each
// command's flags, file names for FILE/DIR/PATH values, and local dataset
// names (zfs list) for arguments.
func bashCompletion(app *cli.App) string {
	var b strings.Builder
	cmds := completionCommands(app)
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, `# bash completion for %[1]s; generated from its command definitions (%[1]s generate bash)

_%[1]s() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd= i opts= valued= paths= datasets=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $cmd in
    "")
        COMPREPLY=($(compgen -W %[2]q -- "$cur"))
        return ;;
`, app.Name, strings.Join(names, " ")+" help")
	for _, c := range cmds {
		var opts, valued, paths []string
		for _, f := range c.flags {
			opts = append(opts, f.names...)
			if f.placeholder != "" {
				valued = append(valued, f.names...)
			}
			if f.takesPath() {
				paths = append(paths, f.names...)
			}
		}
		fmt.Fprintf(&b, "    %s)\n        opts=%q valued=%q paths=%q datasets=%v ;;\n",
			c.name, strings.Join(opts, " "), strings.Join(valued, " "), strings.Join(paths, " "), c.datasets)
	}
	fmt.Fprintf(&b, `    esac
    if [[ " $valued " == *" $prev "* ]]; then
        if [[ " $paths " == *" $prev "* ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $datasets == true && $cur != *:* ]]; then
        COMPREPLY=($(compgen -W "$(zfs list -H -o name -t filesystem,volume 2>/dev/null)" -- "$cur"))
    fi
}
complete -F _%[1]s %[1]s
`, app.Name)
	return b.String()
}

// zshQuote escapes s for a zsh _arguments description inside single quotes.
func zshQuote(s string) string {
	return strings.NewReplacer("'", `'\''`, "[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
}

// zshCompletion is a zsh completion function for app (#compdef).
func zshCompletion(app *cli.App) string {
	var b strings.Builder
	cmds := completionCommands(app)
	fmt.Fprintf(&b, "#compdef %[1]s\n# zsh completion for %[1]s; generated from its command definitions (%[1]s generate zsh)\n\n", app.Name)
	fmt.Fprintf(&b, "_%s_datasets() {\n    local -a ds\n    ds=(${(f)\"$(zfs list -H -o name -t filesystem,volume 2>/dev/null)\"})\n    _describe dataset ds\n}\n\n", app.Name)
	fmt.Fprintf(&b, "_%s() {\n    local -a commands\n    commands=(\n", app.Name)
	for _, c := range cmds {
		fmt.Fprintf(&b, "        '%s:%s'\n", c.name, zshQuote(c.usage))
	}
	b.WriteString("    )\n    if (( CURRENT == 2 )); then\n        _describe command commands\n        return\n    fi\n    local cmd=$words[2]\n    shift words\n    (( CURRENT-- ))\n    case $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "    %s)\n        _arguments -s \\\n", c.name)
		var specs []string
		for _, f := range c.flags {
			for _, n := range f.names {
				spec := "'"
				if f.repeatable {
					spec += "*"
				}
				spec += n + "[" + zshQuote(f.usage) + "]"
				if f.placeholder != "" {
					action := " "
					if f.takesPath() {
						action = "_files"
					}
					spec += ":" + zshQuote(f.placeholder) + ":" + action
				}
				specs = append(specs, spec+"'")
			}
		}
		sort.Strings(specs)
		if c.datasets {
			specs = append(specs, fmt.Sprintf("'*:dataset:_%s_datasets'", app.Name))
		}
		b.WriteString("            " + strings.Join(specs, " \\\n            ") + " ;;\n")
	}
	fmt.Fprintf(&b, "    esac\n}\n\n_%[1]s \"$@\"\n", app.Name)
	return b.String()
}
