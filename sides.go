package main

import (
	"context"
	"errors"
	"time"

	"github.com/zrep/zrep/endpoints"
)

// openSides opens the job's two sides, with the link's compression and
// rate on each; their listings carry user holds when the job's retention
// needs them (pruning, --hold).
func (j *job) openSides() (src, dst *endpoints.Endpoint) {
	srcLink, dstLink := j.link.options(j.src, j.dst)
	holds := j.ret.listsHolds()
	src = endpoints.New(j.src, endpoints.Options{
		Role: "source", Recursive: j.recursive, SSH: j.ssh, Logger: j.out.logger.With("side", "source"), Link: srcLink, Holds: holds, Sudo: j.sudo,
		CommandTimeout: j.commandTimeout,
	})
	dst = endpoints.New(j.dst, endpoints.Options{
		Role: "destination", Recursive: j.recursive, SSH: j.ssh, Logger: j.out.logger.With("side", "destination"), Link: dstLink, Holds: holds, Sudo: j.sudo,
		CommandTimeout: j.commandTimeout,
	})
	return src, dst
}

// closeSides ends each side's ssh connection, logging failures.
func (j *job) closeSides(sides ...*endpoints.Endpoint) {
	for _, e := range sides {
		if err := e.Close(); err != nil && !errors.Is(err, context.Canceled) {
			j.out.logger.Warn("closing endpoint", "endpoint", e.Side().String(), "err", err)
		}
	}
}

// oneSide is a command on one dataset (snapshot, status): the side, how
// to reach it, and where the command speaks.
type oneSide struct {
	side           endpoints.Side
	recursive      bool
	ssh            endpoints.SSHOptions
	sudo           bool
	commandTimeout time.Duration
	out            output
}

// open opens the side in role.
func (o oneSide) open(role string) *endpoints.Endpoint {
	return endpoints.New(o.side, endpoints.Options{
		Role: role, Recursive: o.recursive, SSH: o.ssh, Logger: o.out.logger, CommandTimeout: o.commandTimeout, Sudo: o.sudo,
	})
}
