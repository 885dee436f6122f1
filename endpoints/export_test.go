package endpoints

import "context"

// RunCommand runs argv on e's side as a command that carries no stream,
// for the tests of package endpoints_test.
func (e *Endpoint) RunCommand(ctx context.Context, argv []string) error {
	return e.run(ctx, argv, nil, nil)
}
