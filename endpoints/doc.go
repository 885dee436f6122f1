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
//   - Remote commands are requests of data (request.go): `exec sh -c
//     '<TEMPLATE>' zrep 'word' ...`, a constant sh program per kind (one
//     argv, a pipeline, the listing, the start-up, a kill) and the argvs'
//     words, each single-quoted, so names cannot inject commands; the
//     templates run them under `env LC_ALL=C`, so messages stay in the
//     English that classification reads.
//   - `zrep serve` (serve.go, serve_host.go) is the restricted remote side:
//     it decodes a request strictly, checks each argv against a table of
//     what one role needs under one dataset, and runs the same template in
//     its own place, or refuses with status 126.
//   - A side is probed once (`zfs version`): OpenZFS gets `zfs get -t`,
//     bookmarks, `send -nvP` estimates and resumable receive; zfs-fuse and
//     other legacy ports get none of them.
//   - Listing is one request per call: a `zfs get -Hp` of native
//     properties, parsed strictly (listings are data: anything but exactly
//     what was asked, of names inside the side's dataset, is an error, never
//     a shorter list), then zrep's own user properties (`zrep:placeholder`,
//     `zrep:sync`), whose values are free text that zfs prints raw: first
//     where they are set (no values), then their values, believed only if
//     they match line for line, else read one by one (userprops.go). A
//     non-recursive side uses `-d 1`, which also returns direct children;
//     they are dropped.
//   - Before destroying snapshots, their guids are read in one command; one
//     replaced or gone since it was listed is left and reported.
package endpoints
