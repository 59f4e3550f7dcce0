package admin

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/stanza"
)

// invalid is an INVALID_ARGUMENT error naming the field.
func invalid(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// unavailable is the error for a backend that cannot be reached.
func unavailable(what string, err error) error {
	return status.Errorf(codes.Unavailable, "%s: %v", what, err)
}

// backend turns the error of a call to a backing service into the
// caller's: the service's own status when it gave one (NOT_FOUND,
// ALREADY_EXISTS, INVALID_ARGUMENT...), UNAVAILABLE when it could not be
// reached or timed out.
func backend(what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, what+": canceled")
	}
	st, ok := status.FromError(err)
	if !ok {
		return unavailable(what, err)
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Unknown:
		return status.Errorf(codes.Unavailable, "%s: %s", what, st.Message())
	}
	return status.Errorf(st.Code(), "%s", st.Message())
}

// parseJID parses a JID field, INVALID_ARGUMENT naming it when malformed
// or empty.
func parseJID(field, v string) (jid.JID, error) {
	if v == "" {
		return jid.JID{}, invalid(field, "empty")
	}
	j, err := jid.Parse(v)
	if err != nil {
		return jid.JID{}, invalid(field, "%q is not a valid JID: %v", v, err)
	}
	return j, nil
}

// account parses the bare JID of an account of a served domain.
func (s *Server) account(field, v string) (jid.JID, error) {
	j, err := parseJID(field, v)
	if err != nil {
		return j, err
	}
	if j.Localpart() == "" || !j.IsBare() {
		return j, invalid(field, "%q is not a bare JID (localpart@domain)", v)
	}
	if !s.served(j.Domainpart()) {
		return j, invalid(field, "domain %q is not served here (served: %s)", j.Domainpart(), strings.Join(s.domains, ", "))
	}
	return j, nil
}

// errorCondition reads the defined condition and text of a stanza error
// in raw; empty when raw has none.
func errorCondition(raw []byte) (cond stanza.Condition, text string) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	inError, inText := false, false
	for {
		tok, err := d.Token()
		if err == io.EOF || err != nil {
			return cond, text
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "error" && t.Name.Space != stanza.NS:
				inError = true
			case inError && t.Name.Space == stanza.NS && t.Name.Local == "text":
				inText = true
			case inError && t.Name.Space == stanza.NS && cond == "":
				cond = stanza.Condition(t.Name.Local)
			}
		case xml.EndElement:
			if t.Name.Space == stanza.NS && t.Name.Local == "text" {
				inText = false
			}
		case xml.CharData:
			if inText {
				text += string(t)
			}
		}
	}
}

// stanzaStatus maps the stanza error a router answered a roster change
// with to the caller's status.
func stanzaStatus(cond stanza.Condition, text string) error {
	msg := string(cond)
	if text != "" {
		msg += ": " + text
	}
	switch cond {
	case stanza.ItemNotFound:
		return status.Error(codes.NotFound, msg)
	case stanza.BadRequest, stanza.NotAcceptable, stanza.JIDMalformed:
		return status.Error(codes.InvalidArgument, msg)
	case stanza.Forbidden, stanza.NotAllowed:
		return status.Error(codes.PermissionDenied, msg)
	case stanza.ServiceUnavailable, stanza.ResourceConstraint:
		return status.Error(codes.ResourceExhausted, msg)
	}
	return status.Error(codes.Unavailable, msg)
}
