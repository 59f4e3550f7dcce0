package router

import (
	"github.com/switchboard-xmpp/switchboard/internal/metrics"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// Namespaces of the IQ payloads the server answers.
const (
	nsPing      = "urn:xmpp:ping"                         // XEP-0199
	nsDiscoInfo = "http://jabber.org/protocol/disco#info" // XEP-0030
	nsRoster    = "jabber:iq:roster"                      // RFC 6121 section 2
)

// serverFeatures are the features the server domain advertises in
// disco#info: exactly what toServer answers.
var serverFeatures = []string{nsDiscoInfo, nsDiscoItems, nsPing, nsMsgOffline}

// toServer handles a stanza for our domain itself (RFC 6120 section 10.5.1)
// or for a resource of it (section 10.5.2), which we have none of.
func (j *job) toServer(to jid.JID) {
	switch j.st.Kind {
	case busv1.Kind_KIND_IQ:
		if !isRequest(j.st.Type) {
			j.drop("IQ response to the server")
			return
		}
		req, payload, ok := j.request()
		if !ok {
			return
		}
		if to.Resourcepart() != "" {
			j.bounceElement(req, stanza.ServiceUnavailable)
			return
		}
		switch {
		case j.st.Type == typeGet && payload.Space == nsPing && payload.Local == "ping":
			// XEP-0199 section 4.2: a ping to the server.
			j.reply(result(req))
		case j.st.Type == typeGet && payload.Space == nsDiscoInfo && payload.Local == "query":
			if payload.Attr("node") != "" {
				// XEP-0030 section 3.1: we have no nodes.
				j.bounceElement(req, stanza.ItemNotFound)
				return
			}
			j.reply(result(req).Append(serverInfo()))
		case j.st.Type == typeGet && payload.Space == nsDiscoItems && payload.Local == "query":
			// XEP-0030 section 4: no items (no components or nodes).
			if payload.Attr("node") != "" {
				j.bounceElement(req, stanza.ItemNotFound)
				return
			}
			j.reply(result(req).Append(dom.New(nsDiscoItems, "query")))
		default:
			// RFC 6120 section 8.4: a payload the server does not
			// handle gets <service-unavailable/>.
			j.bounceElement(req, stanza.ServiceUnavailable)
		}
	case busv1.Kind_KIND_MESSAGE:
		// A message to the server has no recipient here (no service
		// takes messages yet); it is ignored, never answered, which
		// also keeps error messages from looping.
		j.drop("message to the server")
	case busv1.Kind_KIND_PRESENCE:
		// Directed presence to the server means nothing to us.
		j.drop("presence to the server")
	}
}

// serveAccount answers an IQ on behalf of an account: one without to (RFC
// 6120 section 10.3.3) or one to a bare JID (RFC 6121 sections 8.5.2.1.3 and
// 8.5.2.2.3). The IQ never reaches a resource.
func (j *job) serveAccount() {
	if !isRequest(j.st.Type) {
		j.drop("IQ response to a bare JID")
		return
	}
	req, payload, ok := j.request()
	if !ok {
		return
	}
	switch {
	case j.st.Type == typeGet && payload.Space == nsPing && payload.Local == "ping":
		// XEP-0199 defines a reply the server can give for the
		// account, so RFC 6121 section 8.5.2.1.3 makes the server give
		// it: the account exists and its server is reachable.
		j.reply(result(req))
	case payload.Space == nsRoster && payload.Local == "query":
		// Roster management (RFC 6121 section 2).
		j.roster(req, payload)
	case j.st.Type == typeGet && payload.Space == nsDiscoInfo && payload.Local == "query" && payload.Attr("node") == "":
		// XEP-0030 section 3.1, answered by the server for the account.
		j.reply(result(req).Append(accountInfo()))
	case j.st.Type == typeGet && payload.Space == nsDiscoItems && payload.Local == "query" && payload.Attr("node") == "":
		j.reply(result(req).Append(dom.New(nsDiscoItems, "query")))
	default:
		// Nothing else is handled on an account's behalf yet (no
		// vCard, private storage).
		j.bounceElement(req, stanza.ServiceUnavailable)
	}
}

// request parses an IQ request and returns it with its payload. An IQ get or
// set carries exactly one child (RFC 6120 section 8.2.3); otherwise the
// sender gets <bad-request/>. ok is false when the IQ was answered or
// dropped.
func (j *job) request() (req, payload *dom.Element, ok bool) {
	req, err := decodeElement(j.st.Raw)
	if err != nil {
		j.r.log.Warn("router: undecodable IQ dropped", append(j.attrs(), "err", err)...)
		return nil, nil, false
	}
	if j.st.Type != typeGet && j.st.Type != typeSet || req.ChildCount() != 1 {
		j.r.log.Info("router: IQ request without exactly one payload, or of unknown type", j.attrs()...)
		j.bounceElement(req, stanza.BadRequest)
		return nil, nil, false
	}
	return req, req.FirstChild(), true
}

// result returns the empty result of IQ request req (RFC 6120 section
// 8.2.3): same id, from and to swapped. A request without to gets a result
// without from, which the sender reads as its own account.
func result(req *dom.Element) *dom.Element {
	res := dom.New(req.Space, "iq", "type", typeResult, "id", req.Attr("id"))
	if to := req.Attr("to"); to != "" {
		res.SetAttr("from", to)
	}
	if from := req.Attr("from"); from != "" {
		res.SetAttr("to", from)
	}
	return res
}

// serverInfo is the disco#info payload of the server domain (XEP-0030
// section 3.1): a server of category server, type im (the XMPP registrar's
// identity for an IM server), and the features it really answers.
func serverInfo() *dom.Element {
	q := dom.New(nsDiscoInfo, "query")
	q.Append(dom.New(nsDiscoInfo, "identity", "category", "server", "type", "im", "name", "Switchboard"))
	for _, f := range serverFeatures {
		q.Append(dom.New(nsDiscoInfo, "feature", "var", f))
	}
	return q
}

// bounce answers the stanza with a stanza error built from the original
// (RFC 6120 section 8.3.1). A stanza of type error is never answered with
// an error, nor an IQ result.
func (j *job) bounce(cond stanza.Condition) {
	if !answerable(j.st) {
		j.drop("would bounce " + string(cond))
		return
	}
	el, err := decodeElement(j.st.Raw)
	if err != nil {
		j.r.log.Warn("router: undecodable stanza, no error sent", append(j.attrs(), "condition", string(cond), "err", err)...)
		return
	}
	j.bounceElement(el, cond)
}

// bounceMalformed answers a stanza whose to cannot be prepared with
// <jid-malformed/>. The reply comes from our domain (the sender's, when it
// is one of ours) rather than from the bad address, which the sender's
// client may not be able to parse either.
func (j *job) bounceMalformed() {
	if !answerable(j.st) {
		j.drop("would bounce jid-malformed")
		return
	}
	el, err := decodeElement(j.st.Raw)
	if err != nil {
		j.r.log.Warn("router: undecodable stanza, no error sent", append(j.attrs(), "err", err)...)
		return
	}
	d := j.r.domain
	if j.r.local(j.from.Domainpart()) {
		d = j.from.Domainpart()
	}
	el.SetAttr("to", d)
	j.bounceElement(el, stanza.JIDMalformed)
}

// bounceElement answers with an error built from el, the parsed original.
func (j *job) bounceElement(el *dom.Element, cond stanza.Condition) {
	if !answerable(j.st) {
		return
	}
	reply := stanza.ErrorReply(el, &stanza.Error{Condition: cond})
	if reply == nil {
		return
	}
	j.outcomes.Add(metrics.Bounced)
	j.reply(reply)
}

// answerable reports whether st may get an error reply.
func answerable(st *busv1.Stanza) bool {
	if st.Type == typeError {
		return false
	}
	return st.Kind != busv1.Kind_KIND_IQ || isRequest(st.Type)
}

// reply sends el, an answer made by the server, to the sender's session.
func (j *job) reply(el *dom.Element) {
	j.outcomes.Add(metrics.Answered)
	if to, err := jid.Parse(el.Attr("to")); err == nil && !j.r.local(to.Domainpart()) {
		// The sender is on another server: the answer goes back through
		// s2s, never answered itself if it cannot be sent.
		j.toRemote(to.Domainpart(), &busv1.Stanza{
			From:   el.Attr("from"),
			To:     el.Attr("to"),
			Kind:   j.st.Kind,
			Type:   el.Attr("type"),
			Id:     el.Attr("id"),
			Origin: j.st.Origin,
			Seq:    j.st.Seq,
			Raw:    el.Marshal(),
		}, false)
		return
	}
	o := j.st.Origin
	j.add(o.Node, &busv1.Delivery{
		Session: o.Session,
		Action:  busv1.Action_ACTION_DELIVER,
		Kind:    j.st.Kind,
		Type:    el.Attr("type"),
		From:    el.Attr("from"),
		To:      el.Attr("to"),
		Id:      el.Attr("id"),
		Raw:     el.Marshal(),
	})
}
