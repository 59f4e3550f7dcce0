package router

import "errors"

var (
	// ErrConfig wraps every error New returns for a Config it cannot use; the
	// message names the setting.
	ErrConfig = errors.New("router: bad configuration")

	// ErrRunning is returned by Run when the Router is already running.
	ErrRunning = errors.New("router: already running")

	// ErrSubscriptionClosed is returned by Run when its NATS connection
	// closed under it, without Run's context being done. Its partitions
	// are taken over by the other routers once their leases expire.
	ErrSubscriptionClosed = errors.New("router: NATS connection closed")
)
