package s2s

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Envelopes carry stanzas in jabber:client form (as c2s publishes them and
// as c2s writes them to clients); s2s converts to and from jabber:server at
// its edge.

// wrapper opens a stream in which an envelope's self-contained element can
// be read with the stream reader.
const wrapper = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

// decodeRaw reads an envelope's raw stanza.
func decodeRaw(raw []byte) (*dom.Element, error) {
	r := stream.NewReader(bytes.NewReader(append([]byte(wrapper), raw...)), stream.Limits{MaxStanzaBytes: len(raw) + 1})
	if _, err := r.ReadHeader(); err != nil {
		return nil, err
	}
	el, err := r.Next()
	if err != nil {
		return nil, err
	}
	if !stanza.IsStanza(el) {
		return nil, errors.New("s2s: envelope does not hold a stanza")
	}
	return el, nil
}

// setSpace moves el and its descendants from namespace from to to.
func setSpace(el *dom.Element, from, to string) {
	if el.Space == from {
		el.Space = to
	}
	for _, c := range el.Children() {
		setSpace(c, from, to)
	}
}

// kinds maps stanza names to envelope kinds.
var kinds = map[string]busv1.Kind{
	stanza.Message:  busv1.Kind_KIND_MESSAGE,
	stanza.Presence: busv1.Kind_KIND_PRESENCE,
	stanza.IQ:       busv1.Kind_KIND_IQ,
}

// publish hands a stanza in jabber:client form to the routers, like c2s:
// on the route partition of the sender's bare JID, origin = this node and
// session.
func (s *Server) publish(el *dom.Element, from, to jid.JID, session string, seq uint64) error {
	env := &busv1.Stanza{
		From:   from.String(),
		To:     to.String(),
		Kind:   kinds[el.Local],
		Type:   el.Attr("type"),
		Id:     el.Attr("id"),
		Origin: &busv1.Origin{Node: s.cfg.Node, Session: session},
		Raw:    el.Marshal(),
		Seq:    seq,
	}
	b, err := proto.Marshal(env)
	if err == nil {
		err = s.cfg.NATS.Publish(s.cfg.Subjects.RouteFor(from.Bare().String()), b)
	}
	if err != nil {
		return fmt.Errorf("s2s: publish: %w", err)
	}
	return nil
}

// bounceSession is the origin session of the error replies s2s makes for
// stanzas it could not send.
const bounceSession = "bounce"

// bounce answers a stanza that could not be sent with the stanza error c
// (RFC 6120 section 8.3.1), through the routers, unless it is itself an
// error.
func (s *Server) bounce(env *busv1.Stanza, c stanza.Condition, text string) {
	el, err := decodeRaw(env.GetRaw())
	if err != nil {
		s.log.Warn("s2s: cannot bounce an undecodable stanza", "err", err, "to", env.GetTo())
		return
	}
	reply := stanza.ErrorReply(el, &stanza.Error{Condition: c, Text: text})
	if reply == nil {
		return // errors are not answered with errors
	}
	from, err1 := jid.Parse(reply.Attr("from"))
	to, err2 := jid.Parse(reply.Attr("to"))
	if err1 != nil || err2 != nil {
		s.log.Warn("s2s: cannot bounce a stanza without addresses", "from", env.GetFrom(), "to", env.GetTo())
		return
	}
	if err := s.publish(reply, from, to, bounceSession, s.bounceSeq.Add(1)); err != nil {
		s.log.Warn("s2s: bounce lost", "err", err)
	}
}
