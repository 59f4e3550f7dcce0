package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// MessageType is the type attribute of a message (RFC 6121 section 5.2.2).
type MessageType string

// Message types.
const (
	MessageNormal    MessageType = "normal"
	MessageChat      MessageType = "chat"
	MessageGroupchat MessageType = "groupchat"
	MessageHeadline  MessageType = "headline"
	MessageError     MessageType = "error"
)

// Message is a message stanza with the children of RFC 6121 section 5.2.
type Message struct {
	ID   string
	From jid.JID // stamped by the server on incoming stanzas
	To   jid.JID
	// Type is MessageNormal when the attribute is absent on an incoming
	// message; empty on an outgoing one sends no attribute (also normal).
	Type    MessageType
	Lang    string // xml:lang
	Subject string
	Body    string
	Thread  string
	// Extra holds every other child element, in order (extension
	// payloads such as receipts or chat states).
	Extra []*dom.Element
	// Error is the stanza error of a message of type error.
	Error *stanza.Error
}

// Element returns the message as a stanza in the jabber:client namespace.
func (m Message) Element() *dom.Element {
	el := dom.New(stream.NSClient, "message")
	setAddrs(el, m.ID, m.From, m.To, string(m.Type), m.Lang)
	addText(el, "subject", m.Subject)
	addText(el, "body", m.Body)
	addText(el, "thread", m.Thread)
	el.Append(m.Extra...)
	if m.Error != nil {
		el.Append(m.Error.Element(stream.NSClient))
	}
	return el
}

// ParseMessage reads a message stanza. A bad address gives an error
// together with everything else that could be read.
func ParseMessage(el *dom.Element) (Message, error) {
	m := Message{ID: el.Attr("id"), Type: MessageType(el.Attr("type")), Lang: el.Lang()}
	if m.Type == "" {
		m.Type = MessageNormal
	}
	var err error
	m.From, m.To, err = parseFromTo(el)
	for _, ch := range el.Children() {
		if ch.Space != el.Space {
			m.Extra = append(m.Extra, ch)
			continue
		}
		switch ch.Local {
		case "subject":
			if m.Subject == "" {
				m.Subject = ch.Text()
			}
		case "body":
			if m.Body == "" {
				m.Body = ch.Text()
			}
		case "thread":
			m.Thread = ch.Text()
		case "error":
			m.Error, _ = stanza.ParseError(el)
		default:
			m.Extra = append(m.Extra, ch)
		}
	}
	return m, err
}

// PresenceType is the type attribute of a presence (RFC 6121 section 4.7.1).
type PresenceType string

// Presence types. The empty type is available presence.
const (
	PresenceAvailable    PresenceType = ""
	PresenceUnavailable  PresenceType = "unavailable"
	PresenceSubscribe    PresenceType = "subscribe"
	PresenceSubscribed   PresenceType = "subscribed"
	PresenceUnsubscribe  PresenceType = "unsubscribe"
	PresenceUnsubscribed PresenceType = "unsubscribed"
	PresenceProbe        PresenceType = "probe"
	PresenceError        PresenceType = "error"
)

// Show is the availability sub-state of RFC 6121 section 4.7.2.1.
type Show string

// Show values; empty means plainly available.
const (
	ShowAway Show = "away"
	ShowChat Show = "chat"
	ShowDND  Show = "dnd"
	ShowXA   Show = "xa"
)

// Presence is a presence stanza with the children of RFC 6121 section 4.7.
type Presence struct {
	ID       string
	From     jid.JID // stamped by the server on incoming stanzas
	To       jid.JID // zero for broadcast presence
	Type     PresenceType
	Lang     string
	Show     Show
	Status   string
	Priority int8 // RFC 6121 section 4.7.2.3; 0 is not written
	// Extra holds every other child element, in order.
	Extra []*dom.Element
	// Error is the stanza error of a presence of type error.
	Error *stanza.Error
}

// Element returns the presence as a stanza in the jabber:client namespace.
func (p Presence) Element() *dom.Element {
	el := dom.New(stream.NSClient, "presence")
	setAddrs(el, p.ID, p.From, p.To, string(p.Type), p.Lang)
	addText(el, "show", string(p.Show))
	addText(el, "status", p.Status)
	if p.Priority != 0 {
		addText(el, "priority", strconv.Itoa(int(p.Priority)))
	}
	el.Append(p.Extra...)
	if p.Error != nil {
		el.Append(p.Error.Element(stream.NSClient))
	}
	return el
}

// ParsePresence reads a presence stanza. A bad address gives an error
// together with everything else that could be read; a priority that is not
// an integer in [-128, 127] reads as 0.
func ParsePresence(el *dom.Element) (Presence, error) {
	p := Presence{ID: el.Attr("id"), Type: PresenceType(el.Attr("type")), Lang: el.Lang()}
	var err error
	p.From, p.To, err = parseFromTo(el)
	for _, ch := range el.Children() {
		if ch.Space != el.Space {
			p.Extra = append(p.Extra, ch)
			continue
		}
		switch ch.Local {
		case "show":
			p.Show = Show(strings.TrimSpace(ch.Text()))
		case "status":
			if p.Status == "" {
				p.Status = ch.Text()
			}
		case "priority":
			if n, perr := strconv.ParseInt(strings.TrimSpace(ch.Text()), 10, 8); perr == nil {
				p.Priority = int8(n)
			}
		case "error":
			p.Error, _ = stanza.ParseError(el)
		default:
			p.Extra = append(p.Extra, ch)
		}
	}
	return p, err
}

// setAddrs sets the common attributes of a stanza; empty values are left out.
func setAddrs(el *dom.Element, id string, from, to jid.JID, typ, lang string) {
	if !from.IsZero() {
		el.SetAttr("from", from.String())
	}
	if !to.IsZero() {
		el.SetAttr("to", to.String())
	}
	el.SetAttr("id", id)
	el.SetAttr("type", typ)
	if lang != "" {
		el.SetAttrNS(dom.NSXML, "lang", lang)
	}
}

// addText appends <local>text</local> in jabber:client when text is set.
func addText(el *dom.Element, local, text string) {
	if text != "" {
		el.Append(dom.New(stream.NSClient, local).AppendText(text))
	}
}

// parseFromTo parses both address attributes.
func parseFromTo(el *dom.Element) (from, to jid.JID, err error) {
	var errFrom, errTo error
	from, errFrom = parseAddr(el.Attr("from"))
	to, errTo = parseAddr(el.Attr("to"))
	if errFrom != nil {
		errFrom = fmt.Errorf("from %q: %w", el.Attr("from"), errFrom)
	}
	if errTo != nil {
		errTo = fmt.Errorf("to %q: %w", el.Attr("to"), errTo)
	}
	return from, to, errors.Join(errFrom, errTo)
}

// SendMessage sends m. The From field is left for the server to stamp.
func (c *Client) SendMessage(ctx context.Context, m Message) error {
	m.From = jid.JID{}
	return c.Send(ctx, m.Element())
}

// SendPresence sends p. The From field is left for the server to stamp.
func (c *Client) SendPresence(ctx context.Context, p Presence) error {
	p.From = jid.JID{}
	return c.Send(ctx, p.Element())
}

// Ping sends an XEP-0199 ping to to (the zero JID pings the server) and
// waits for the answer.
func (c *Client) Ping(ctx context.Context, to jid.JID) error {
	iq := dom.New(stream.NSClient, "iq", "type", "get")
	if !to.IsZero() {
		iq.SetAttr("to", to.String())
	}
	_, err := c.IQ(ctx, iq.Append(dom.New(nsPing, "ping")))
	return err
}

const nsPing = "urn:xmpp:ping"
