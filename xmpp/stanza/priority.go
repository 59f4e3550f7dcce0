package stanza

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/switchboard-xmpp/switchboard/xmpp/dom"
)

// Priority returns the <priority/> of a presence stanza (RFC 6121 section
// 4.7.2.3): 0 when absent, clamped to -128..127. A value that is not an
// integer gives 0 and an error.
func Priority(p *dom.Element) (int32, error) {
	c := p.Child(p.Space, "priority")
	if c == nil {
		return 0, nil
	}
	s := strings.TrimSpace(c.Text())
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			// Out of int64 range: still a number, clamp by its sign.
			if strings.HasPrefix(s, "-") {
				return -128, nil
			}
			return 127, nil
		}
		return 0, fmt.Errorf("priority %q is not an integer", s)
	}
	return int32(min(max(n, -128), 127)), nil
}
