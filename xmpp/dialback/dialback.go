// Package dialback implements the protocol parts of Server Dialback
// (XEP-0220): the keys of XEP-0185 and the <db:result/> and <db:verify/>
// elements.
//
// # Roles
//
// On a stream from the Initiating Server (example.org) to the Receiving
// Server (xmpp.example.com), the initiator asks to be accepted for its
// domain with a Result carrying a key. The receiver checks the key by
// opening its own stream to the Authoritative Server of example.org and
// sending a Verify with the same key and the id of the first stream. The
// authoritative server recomputes the key from its secret and answers with
// a Verify of type valid or invalid; the receiver passes the verdict on as
// a Result of the same type.
//
// # Keys
//
// Key computes the key XEP-0185 recommends: HMAC-SHA256 keyed with
// SHA-256 of a secret shared by every server process of the originating
// domain, over "receiving originating streamID", as lower-case hex. Check
// compares keys in constant time.
package dialback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// Namespaces of XEP-0220.
const (
	// NS is the namespace of <db:result/> and <db:verify/>, declared with
	// the prefix "db" on the stream header.
	NS = "jabber:server:dialback"
	// NSFeature is the stream feature a server advertises when it accepts
	// dialback; an <errors/> child says it understands type='error'.
	NSFeature = "urn:xmpp:features:dialback"
)

// Prefix is the namespace prefix older servers expect for NS.
const Prefix = "db"

// Key returns the XEP-0185 dialback key for a stream with id streamID from
// the originating domain to the receiving domain.
func Key(secret, receiving, originating, streamID string) string {
	k := sha256.Sum256([]byte(secret))
	// The XEP keys the HMAC with the hex form of the secret's hash.
	m := hmac.New(sha256.New, []byte(hex.EncodeToString(k[:])))
	m.Write([]byte(receiving))
	m.Write([]byte{' '})
	m.Write([]byte(originating))
	m.Write([]byte{' '})
	m.Write([]byte(streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// Check reports whether key is the key of the stream, in constant time.
func Check(secret, receiving, originating, streamID, key string) bool {
	want := Key(secret, receiving, originating, streamID)
	return hmac.Equal([]byte(want), []byte(key))
}

// Type is the verdict carried by a Result or a Verify; empty on a request.
type Type string

// Verdicts of XEP-0220.
const (
	Request Type = ""
	Valid   Type = "valid"
	Invalid Type = "invalid"
	Error   Type = "error" // with a stanza error (XEP-0220 section 2.4)
)

// ErrMalformed is returned for an element that is not a well-formed
// <db:result/> or <db:verify/>.
var ErrMalformed = errors.New("dialback: malformed element")

// Result is <db:result/>: a request to be accepted for From by To (with
// Key), or the receiving server's verdict (with Type).
type Result struct {
	From, To string
	Key      string // on a request
	Type     Type
	Err      *stanza.Error // with Type Error
}

// Verify is <db:verify/>: a receiving server asking the authoritative
// server of To whether Key is right for the stream with id ID (a
// request), or the answer (with Type).
type Verify struct {
	From, To, ID string
	Key          string // on a request
	Type         Type
	Err          *stanza.Error // with Type Error
}

// Element returns r as <db:result/>.
func (r Result) Element() *dom.Element {
	return build("result", r.From, r.To, "", r.Key, r.Type, r.Err)
}

// Element returns v as <db:verify/>.
func (v Verify) Element() *dom.Element {
	return build("verify", v.From, v.To, v.ID, v.Key, v.Type, v.Err)
}

func build(local, from, to, id, key string, t Type, e *stanza.Error) *dom.Element {
	el := dom.New(NS, local, "from", from, "to", to)
	if id != "" {
		el.SetAttr("id", id)
	}
	if t != Request {
		el.SetAttr("type", string(t))
	}
	switch {
	case t == Error && e != nil:
		// XEP-0220 section 2.4: the <error/> child is in the stream's
		// content namespace, jabber:server.
		el.Append(e.Element(stanza.NSServer))
	case t == Request && key != "":
		el.AppendText(key)
	}
	return el
}

// ParseResult reads a <db:result/>.
func ParseResult(el *dom.Element) (Result, error) {
	p, err := parse(el, "result")
	if err != nil {
		return Result{}, err
	}
	return Result{From: p.from, To: p.to, Key: p.key, Type: p.typ, Err: p.err}, nil
}

// ParseVerify reads a <db:verify/>. A verify needs an id.
func ParseVerify(el *dom.Element) (Verify, error) {
	p, err := parse(el, "verify")
	if err != nil {
		return Verify{}, err
	}
	if p.id == "" {
		return Verify{}, fmt.Errorf("%w: <db:verify/> without an id", ErrMalformed)
	}
	return Verify{From: p.from, To: p.to, ID: p.id, Key: p.key, Type: p.typ, Err: p.err}, nil
}

type parsed struct {
	from, to, id, key string
	typ               Type
	err               *stanza.Error
}

func parse(el *dom.Element, local string) (parsed, error) {
	if el == nil || el.Space != NS || el.Local != local {
		return parsed{}, fmt.Errorf("%w: not <db:%s/>", ErrMalformed, local)
	}
	var p parsed
	p.from, p.to, p.id = el.Attr("from"), el.Attr("to"), el.Attr("id")
	for _, a := range []*string{&p.from, &p.to} {
		d, err := jid.Parse(*a)
		if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
			return parsed{}, fmt.Errorf("%w: from and to must be domain names", ErrMalformed)
		}
		*a = d.Domainpart()
	}
	p.typ = Type(el.Attr("type"))
	switch p.typ {
	case Request:
		p.key = el.Text()
		if p.key == "" {
			return parsed{}, fmt.Errorf("%w: a request without a key", ErrMalformed)
		}
	case Valid, Invalid:
	case Error:
		// The <error/> child is in the stream's namespace, jabber:server.
		shell := *el
		shell.Space = stanza.NSServer
		if e, ok := stanza.ParseError(&shell); ok {
			p.err = e
		} else {
			p.err = &stanza.Error{Condition: stanza.UndefinedCondition}
		}
	default:
		return parsed{}, fmt.Errorf("%w: unknown type %q", ErrMalformed, p.typ)
	}
	return p, nil
}
