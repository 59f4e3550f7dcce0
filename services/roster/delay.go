package roster

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"
)

// StampDelay returns stanza with a XEP-0203 delay element as its last
// child: <delay xmlns='urn:xmpp:delay' from='from' stamp='...'/>, the
// stamp in UTC to the millisecond (XEP-0082). The stanza's own bytes are
// kept; only the delay element is inserted before the closing tag (a
// self-closing root is opened and closed around it). Offline messages
// get it when they are delivered (XEP-0160, section 3).
func StampDelay(stanza []byte, from string, stamp time.Time) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(stanza))
	var (
		depth   int
		rootEnd = -1 // offset of the root's end tag, or of its "/>"
		selfEnd bool
		name    string
	)
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("roster: stanza to stamp: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				name = qualified(t.Name)
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				after := d.InputOffset()
				rootEnd, selfEnd = int(before), after == before
			}
		}
		if depth == 0 && rootEnd >= 0 {
			break
		}
	}
	if rootEnd < 0 {
		return nil, errors.New("roster: stanza to stamp has no root element")
	}
	delay := fmt.Appendf(nil, `<delay xmlns='urn:xmpp:delay' from='%s' stamp='%s'/>`,
		escapeAttr(from), stamp.UTC().Format("2006-01-02T15:04:05.000Z"))
	out := make([]byte, 0, len(stanza)+len(delay)+len(name)+3)
	if selfEnd {
		// "<message .../>": rootEnd is just past "/>".
		i := bytes.LastIndex(stanza[:rootEnd], []byte("/>"))
		out = append(out, stanza[:i]...)
		out = append(out, '>')
		out = append(out, delay...)
		out = append(out, "</"+name+">"...)
		return append(out, stanza[rootEnd:]...), nil
	}
	out = append(out, stanza[:rootEnd]...)
	out = append(out, delay...)
	return append(out, stanza[rootEnd:]...), nil
}

func qualified(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}
