// Package domain holds what every aggregate package shares: the kinds of
// domain error. An aggregate declares its own sentinel errors wrapping one of
// these kinds, e.g.
//
//	var ErrSessionNotFound = fmt.Errorf("session not found: %w", domain.ErrNotFound)
//
// so that the HTTP layer maps every "not found" to a 404 without knowing each
// aggregate, while callers can still match the specific error with errors.Is.
package domain

import "errors"

var (
	// ErrNotFound: the thing does not exist, or belongs to another organization.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request contradicts the current state (a duplicate, a race).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request breaks a rule of the domain (a bad value, a closed session).
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: the caller may not do this, though the thing is theirs to see.
	ErrForbidden = errors.New("forbidden")
)
