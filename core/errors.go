package core

import "errors"

// Conditions a client can observe. Each front-end maps them to its protocol's
// error in one place.
var (
	ErrClosed             = errors.New("broker is closed")
	ErrNotMaster          = errors.New("this node is not the master")
	ErrDestinationFull    = errors.New("destination memory limit reached and the send timed out")
	ErrNoSuchDestination  = errors.New("no such destination")
	ErrUnknownDelivery    = errors.New("no unacknowledged message with that id")
	ErrUnknownTransaction = errors.New("no such transaction")
	ErrTransactionExists  = errors.New("transaction already begun")
	ErrTransactionTooBig  = errors.New("transaction too large to commit")
	ErrClientIDInUse      = errors.New("client id already connected")
	ErrDurableNeedsID     = errors.New("a durable subscription needs a client id")
	ErrDurableInUse       = errors.New("durable subscription already has an active consumer")
	ErrDurableNeedsTopic  = errors.New("durable subscriptions are for topics only")
	ErrInvalidSelector    = errors.New("invalid selector")
	ErrInvalidDestination = errors.New("invalid destination name")
	ErrTempNotOwned       = errors.New("temporary destinations can be consumed only by the connection that created them")
	ErrSubscriptionClosed = errors.New("subscription closed")
	ErrUnauthorized       = errors.New("authentication failed")
	ErrForbidden          = errors.New("not authorized") // auth.go: no grant for this access
)
