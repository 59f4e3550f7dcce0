package c2s

import "errors"

// Sentinel errors between the parts of a connection; none leaves the
// package.
var (
	// errCloseStream asks for an orderly close without a stream error
	// (after a STARTTLS <failure/>, RFC 6120 section 5.4.2.2).
	errCloseStream = errors.New("c2s: closing the stream")
	// errHandshake marks a failed TLS handshake; nothing more can be
	// written on the connection.
	errHandshake = errors.New("c2s: TLS handshake failed")
	// errWriterGone is returned to the reader when the writer goroutine
	// has stopped (the stream is closed or the connection failed).
	errWriterGone = errors.New("c2s: stream writer stopped")
	// errNoChannelBinding is returned for a channel binding type the
	// connection cannot provide.
	errNoChannelBinding = errors.New("c2s: channel binding type not available")
)
