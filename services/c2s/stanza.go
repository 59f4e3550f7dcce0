package c2s

import (
	"context"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	presencev1 "github.com/switchboard-xmpp/switchboard/proto/presence/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// handleStanza checks one element of a bound session against RFC 6120
// section 8, stamps it and publishes it for the routers.
func (c *conn) handleStanza(ctx context.Context, el *dom.Element) error {
	if !isClientStanza(el) {
		return unsupported(el)
	}
	// RFC 6120 section 8.1.2.1: the server stamps from; a client may only
	// give its own full or bare JID.
	if f := el.Attr("from"); f != "" {
		fj, err := jid.Parse(f)
		if err != nil || (fj != c.jid && fj != c.jid.Bare()) {
			c.logger().Info("stanza with a forged from", "from", f)
			return &stream.Error{Condition: stream.InvalidFrom, Text: "from must be the session's own address"}
		}
	}
	if el.Local == stanza.IQ {
		if reason := checkIQ(el); reason != "" {
			c.logger().Info("bad IQ", "reason", reason, "id", el.Attr("id"), "type", el.Attr("type"))
			return c.replyError(el, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: reason})
		}
	}
	var to jid.JID
	if t := el.Attr("to"); t != "" {
		var err error
		if to, err = jid.Parse(t); err != nil {
			c.logger().Info("stanza with a malformed to", "to", t, "err", err)
			return c.replyError(el, &stanza.Error{Type: stanza.Modify, Condition: stanza.JIDMalformed})
		}
		el.SetAttr("to", to.String())
	}
	if el.Local == stanza.IQ && el.Attr("type") == "set" && (to.IsZero() || to == c.jid.Domain()) {
		switch {
		case el.Child(nsSession, "session") != nil:
			// RFC 3921 session establishment: nothing left to do.
			return c.sendElement(dom.New(stream.NSClient, "iq", "type", "result", "id", el.Attr("id")))
		case el.Child(nsBind, "bind") != nil:
			return c.replyError(el, &stanza.Error{Type: stanza.Cancel, Condition: stanza.NotAllowed, Text: "a resource is already bound on this stream"})
		}
	}
	// RFC 6120 section 8.1.5: a stanza without xml:lang is in the
	// stream's language, which must travel with it.
	if el.Lang() == "" {
		el.SetAttrNS(dom.NSXML, "lang", c.lang)
	}
	el.SetAttr("from", c.jid.String())
	if el.Local == stanza.Presence && to.IsZero() {
		switch el.Attr("type") {
		case "":
			c.avail = true
		case "unavailable":
			c.avail = false
		}
		c.available.Store(c.avail)
	}
	if err := c.publish(el, to); err != nil {
		// Never lose a stanza silently: the client is told to retry.
		c.logger().Warn("publishing a stanza failed", "err", err)
		return c.replyError(el, &stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError, Text: "the stanza could not be routed; try again"})
	}
	c.noteSent(el, to)
	return nil
}

// checkIQ applies RFC 6120 section 8.2.3: an IQ has an id and one of the
// four types; get and set carry exactly one child, result at most one.
// It returns why el is wrong, or "".
func checkIQ(el *dom.Element) string {
	if el.Attr("id") == "" {
		return "an IQ needs an id"
	}
	switch el.Attr("type") {
	case "get", "set":
		if el.ChildCount() != 1 {
			return "an IQ get or set needs exactly one child"
		}
	case "result":
		if el.ChildCount() > 1 {
			return "an IQ result has at most one child"
		}
	case "error":
	case "":
		return "an IQ needs a type"
	default:
		return "unknown IQ type"
	}
	return ""
}

// replyError sends the error reply of RFC 6120 section 8.3.1 on this
// stream. Errors are never answered with errors.
func (c *conn) replyError(el *dom.Element, e *stanza.Error) error {
	r := stanza.ErrorReply(el, e)
	if r == nil {
		c.logger().Debug("not answering an error stanza with an error", "condition", string(e.Condition))
		return nil
	}
	r.SetAttr("from", "")
	if t := el.Attr("to"); t != "" {
		if tj, err := jid.Parse(t); err == nil {
			r.SetAttr("from", tj.String())
		}
	}
	r.SetAttr("to", "")
	if c.isBound() {
		r.SetAttr("to", c.jid.String())
	}
	return c.sendElement(r)
}

// kinds maps stanza names to envelope kinds.
var kinds = map[string]busv1.Kind{
	stanza.Message:  busv1.Kind_KIND_MESSAGE,
	stanza.Presence: busv1.Kind_KIND_PRESENCE,
	stanza.IQ:       busv1.Kind_KIND_IQ,
}

// end releases what the session holds, whatever ended it: an account that
// had sent available presence gets an unavailable one from this full JID
// (which the router sends to the account's other resources and contacts,
// RFC 6121 section 4.5.2), then the registry forgets the session.
func (c *conn) end(ctx context.Context) {
	c.srv.forget(c)
	if !c.isBound() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rpcTimeout)
	defer cancel()
	// A session replaced by a new bind of the same full JID sends no
	// unavailable presence: the address stays online in its successor, and
	// the account's other resources would otherwise see it go offline.
	replaced := c.closeErr != nil && c.closeErr.Condition == stream.Conflict
	if c.avail && !replaced {
		un := dom.New(stream.NSClient, "presence", "type", "unavailable", "from", c.jid.String())
		if err := c.publish(un, jid.JID{}); err != nil {
			c.logger().Warn("publishing the final unavailable presence failed", "err", err)
		}
	}
	if _, err := c.srv.cfg.Sessions.Unbind(ctx, &presencev1.UnbindRequest{Jid: c.jid.String(), SessionId: c.sessionID}); err != nil {
		c.logger().Warn("unbinding the session failed", "err", err)
	}
	c.logger().Info("session ended")
}
