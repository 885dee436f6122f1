package pdu

import "errors"

// Class is what the engine may do after an error.
type Class int

const (
	// Unclassified errors are treated as permanent.
	Unclassified Class = iota
	// Retryable errors may go away by themselves: a lost connection, a broken
	// stream, a killed process, a dataset still busy.
	Retryable
	// Permanent errors need the operator: a conflict, a modified destination,
	// no space, a refused name.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	}
	return "unclassified"
}

// classified carries a Class along with the error it wraps.
type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// WithClass marks err with class c; a nil err stays nil.
func WithClass(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &classified{class: c, err: err}
}

// RetryableError marks err as retryable.
func RetryableError(err error) error { return WithClass(err, Retryable) }

// PermanentError marks err as permanent.
func PermanentError(err error) error { return WithClass(err, Permanent) }

// ClassOf returns the class of the outermost classified error in err's
// chain, or Unclassified.
func ClassOf(err error) Class {
	var c *classified
	if errors.As(err, &c) {
		return c.class
	}
	return Unclassified
}

// IsRetryable reports whether err is marked retryable.
func IsRetryable(err error) bool { return ClassOf(err) == Retryable }
