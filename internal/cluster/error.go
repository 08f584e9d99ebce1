package cluster

import "fmt"

// Kind classifies an Error; the API edge maps each kind to one MSK exception.
type Kind int

// The kinds of Error. Each maps to exactly one MSK exception and status code.
const (
	Invalid     Kind = iota + 1 // BadRequestException, 400
	Unsupported                 // BadRequestException, 400: valid in MSK, not built in Fjord yet
	NotFound                    // NotFoundException, 404
	Conflict                    // ConflictException, 409
)

// Error is a failure its caller can fix. Message is written for the person
// who sent the request: it says what is wrong and what to do instead, and the
// API returns it verbatim. Field names the request member at fault, if any.
type Error struct {
	Kind    Kind
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Invalidf returns an Invalid error about field.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Unsupportedf returns an Unsupported error about field.
func Unsupportedf(field, format string, args ...any) *Error {
	return &Error{Kind: Unsupported, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a NotFound error about field.
func NotFoundf(field, format string, args ...any) *Error {
	return &Error{Kind: NotFound, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns a Conflict error about field.
func Conflictf(field, format string, args ...any) *Error {
	return &Error{Kind: Conflict, Field: field, Message: fmt.Sprintf(format, args...)}
}
