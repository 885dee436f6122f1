// Package endpoints drives `zfs` on one side of a replication, on this
// machine or on a host reached over ssh, and satisfies the engine's Sender
// and Receiver interfaces with it.
//
// Every process it starts goes through one runner (runner.go): argv built
// by pure functions (argv.go), ssh wrapping and the one quoting function in
// ssh.go, stderr classified into retryable and permanent errors in one
// place (classify.go), and each command's output parsed beside it
// (parse.go, with tests on captured output in testdata/zfs).
//
// Choices an operator may want to know:
//
//   - One ssh login per remote side per run: the first command starts an
//     OpenSSH master (ControlMaster, socket in a private 0700 directory);
//     later commands share it; Close ends it (`ssh -O exit`). ControlPersist
//     (60s idle) ends a master that zrep left behind when killed.
//   - zrep does not set BatchMode: host-key checking and authentication stay
//     as the user's ssh configuration has them. With one login per run a
//     prompt appears at most once; unattended runs should use keys and may
//     pass `--ssh-option BatchMode=yes`. User options come first on the ssh
//     command line, so they win over zrep's (ssh keeps the first value).
//   - Remote commands run as `env LC_ALL=C 'zfs' 'arg' ...`, each argument
//     single-quoted, so names cannot inject commands and messages stay in
//     the English that classification reads.
//   - A side is probed once (`zfs version`): OpenZFS gets `zfs get -t`,
//     bookmarks, `send -nvP` estimates and resumable receive; zfs-fuse and
//     other legacy ports get none of them.
//   - Listing is one `zfs get -Hp` per call. A non-recursive side uses
//     `-d 1`, which also returns direct children; they are dropped.
package endpoints
