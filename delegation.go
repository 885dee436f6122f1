package main

import (
	"context"
	"errors"
	"sync"

	"github.com/zrep/zrep/endpoints"
)

// work is what the job does, as far as zfs permissions go.
func (j *job) work() endpoints.Work {
	w := endpoints.Work{
		Recursive:  j.recursive,
		Snapshot:   j.ret.snapshot,
		Hold:       j.ret.prune.Hold,
		KeepSource: j.ret.prune.Retention.Source != nil,
		KeepDest:   j.ret.prune.Retention.Dest != nil,
		Rollback:   j.cfg.Rollback,
	}
	for _, p := range j.cfg.Receive.Set {
		w.RecvSet = append(w.RecvSet, p.Name)
	}
	w.RecvExclude = append(w.RecvExclude, j.cfg.Receive.Exclude...)
	return w
}

// checkDelegation checks on both sides at once, before anything is sent
// or snapshotted, that an account that is not root holds the zfs
// permissions w needs; a missing one ends the command with exit 1,
// nothing changed, naming the permission and the zfs allow command that
// grants it.
func (j *job) checkDelegation(ctx context.Context, src, dst *endpoints.Endpoint, w endpoints.Work) error {
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []struct {
		role string
		e    *endpoints.Endpoint
	}{{"source", src}, {"destination", dst}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.e.CheckDelegation(ctx, endpoints.Needs(s.role, w))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	return nil
}
