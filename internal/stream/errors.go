package stream

import (
	"errors"
	"fmt"
)

// invalidError marks input that can never be processed: it goes to the
// dead-letter topic and processing continues. Any other error a handler
// returns is treated as a transient fault and retried.
type invalidError struct {
	class string
	err   error
}

func (e *invalidError) Error() string { return e.err.Error() }
func (e *invalidError) Unwrap() error { return e.err }

// Invalid wraps err to say the record is bad input (malformed, unknown grade,
// negative price): it is sent to the dead-letter topic with err as the
// reason, and the records after it are processed.
func Invalid(err error) error {
	if err == nil {
		return nil
	}
	return &invalidError{class: "invalid", err: err}
}

// Invalidf is Invalid(fmt.Errorf(...)).
func Invalidf(format string, args ...any) error {
	return Invalid(fmt.Errorf(format, args...))
}

func invalidClass(class string, err error) error { return &invalidError{class: class, err: err} }

// IsInvalid reports whether err marks bad input.
func IsInvalid(err error) bool {
	var ie *invalidError
	return errors.As(err, &ie)
}

func classOf(err error) string {
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie.class
	}
	return "transient"
}

// ErrNotLocal is returned by a local key lookup when another instance owns
// the key's partition.
var ErrNotLocal = errors.New("stream: key not owned by this instance")
