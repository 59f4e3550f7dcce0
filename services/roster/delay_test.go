package roster

import (
	"testing"
	"time"
)

func TestStampDelayAddsDelayAsLastChild_XEP0203(t *testing.T) {
	stamp := time.Date(2026, 5, 1, 12, 30, 0, 250_000_000, time.FixedZone("CEST", 2*3600))
	const delay = `<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-05-01T10:30:00.250Z'/>`
	for _, c := range []struct{ in, want string }{
		{`<message to='a@example.com'><body>hi</body></message>`,
			`<message to='a@example.com'><body>hi</body>` + delay + `</message>`},
		{`<message to='a@example.com' type="chat"/>`,
			`<message to='a@example.com' type="chat">` + delay + `</message>`},
		{`<message><x xmlns='urn:example'><message/></x></message>`,
			`<message><x xmlns='urn:example'><message/></x>` + delay + `</message>`},
		{`<cli:message xmlns:cli='jabber:client'><body>x</body></cli:message>`,
			`<cli:message xmlns:cli='jabber:client'><body>x</body>` + delay + `</cli:message>`},
	} {
		got, err := StampDelay([]byte(c.in), "example.com", stamp)
		if err != nil || string(got) != c.want {
			t.Errorf("StampDelay(%s) =\n%s, %v\nwant\n%s", c.in, got, err, c.want)
		}
	}
	if _, err := StampDelay([]byte(`<message><body>`), "example.com", stamp); err == nil {
		t.Error("StampDelay of a cut stanza succeeded")
	}
}
