package stream

import "unicode/utf8"

// nsXMLNS is the namespace of xmlns attributes; Namespaces in XML forbids
// binding any prefix to it.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// Byte classes of the tokenizer, for ASCII; runes beyond are checked with
// isNameStartRune, isNameRune and isXMLChar.
var (
	// nameStart: bytes that may start a name part (the colon is handled by
	// readQName, which splits prefixes).
	nameStart [utf8.RuneSelf]bool
	// nameRest: bytes that may continue, but not start, a name part.
	nameRest [utf8.RuneSelf]bool
	// textPlain: bytes copied unchanged in character data.
	textPlain [256]bool
	// attrPlain: bytes copied unchanged in an attribute value (whitespace is
	// normalised to a space, quotes may end the value).
	attrPlain [256]bool
)

func init() {
	for c := 'a'; c <= 'z'; c++ {
		nameStart[c] = true
		nameStart[c-'a'+'A'] = true
	}
	nameStart['_'] = true
	for c := '0'; c <= '9'; c++ {
		nameRest[c] = true
	}
	nameRest['-'] = true
	nameRest['.'] = true
	for c := 0x20; c < utf8.RuneSelf; c++ {
		textPlain[c] = true
		attrPlain[c] = true
	}
	textPlain['\t'] = true
	textPlain['\n'] = true
	for _, c := range "<&]>" {
		textPlain[c] = false
	}
	for _, c := range "<&'\"" {
		attrPlain[c] = false
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isNameStartRune reports whether r may start a name (XML 1.0 production
// NameStartChar, without the colon).
func isNameStartRune(r rune) bool {
	if r < utf8.RuneSelf {
		return nameStart[r]
	}
	return (r >= 0xC0 && r <= 0xD6) || (r >= 0xD8 && r <= 0xF6) ||
		(r >= 0xF8 && r <= 0x2FF) || (r >= 0x370 && r <= 0x37D) ||
		(r >= 0x37F && r <= 0x1FFF) || (r >= 0x200C && r <= 0x200D) ||
		(r >= 0x2070 && r <= 0x218F) || (r >= 0x2C00 && r <= 0x2FEF) ||
		(r >= 0x3001 && r <= 0xD7FF) || (r >= 0xF900 && r <= 0xFDCF) ||
		(r >= 0xFDF0 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0xEFFFF)
}

// isNameRune reports whether r may continue a name (production NameChar,
// without the colon).
func isNameRune(r rune) bool {
	if r < utf8.RuneSelf {
		return nameStart[r] || nameRest[r]
	}
	return isNameStartRune(r) || r == 0xB7 ||
		(r >= 0x300 && r <= 0x36F) || (r >= 0x203F && r <= 0x2040)
}

// isXMLChar reports whether XML 1.0 allows r in a document (production Char).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}

// isNCName reports whether s is a name without a colon.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == utf8.RuneError || (i == 0 && !isNameStartRune(r)) || !isNameRune(r) {
			return false
		}
	}
	return true
}

// commonNames holds names and namespaces seen on most streams, so that
// reading them allocates nothing even on a new connection. It is read-only.
var commonNames = func() map[string]string {
	m := make(map[string]string)
	for _, s := range []string{
		// stanzas and their usual children and attributes
		"message", "presence", "iq", "body", "subject", "thread", "error",
		"text", "show", "status", "priority", "query", "item", "group", "x",
		"to", "from", "id", "type", "xml", "lang", "xmlns", "version", "name", "jid",
		"subscription", "ask", "by", "stamp", "code", "node", "ver", "hash",
		"c", "ping", "delay", "request", "received", "markable", "displayed",
		"active", "composing", "paused", "inactive", "gone", "origin-id",
		"stanza-id", "html", "p", "br", "span", "style", "href", "a",
		// stream negotiation
		"stream", "features", "starttls", "proceed", "failure", "required",
		"mechanisms", "mechanism", "auth", "challenge", "response", "success",
		"abort", "bind", "resource", "session", "optional", "result", "verify",
		// namespaces
		NS, NSClient, NSServer, NSError,
		"urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-sasl",
		"urn:ietf:params:xml:ns:xmpp-bind", "urn:ietf:params:xml:ns:xmpp-session",
		"urn:ietf:params:xml:ns:xmpp-stanzas", "jabber:server:dialback",
		"jabber:iq:roster", "jabber:x:data", "vcard-temp", "urn:xmpp:ping",
		"urn:xmpp:delay", "urn:xmpp:receipts", "urn:xmpp:chat-markers:0",
		"urn:xmpp:sid:0", "urn:xmpp:sm:3", "urn:xmpp:carbons:2",
		"urn:xmpp:mam:2", "urn:xmpp:hints",
		"http://jabber.org/protocol/chatstates",
		"http://jabber.org/protocol/caps",
		"http://jabber.org/protocol/disco#info",
		"http://jabber.org/protocol/disco#items",
		"http://jabber.org/protocol/xhtml-im",
		"http://www.w3.org/1999/xhtml",
	} {
		m[s] = s
	}
	return m
}()
