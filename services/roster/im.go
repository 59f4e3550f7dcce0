package roster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
)

// Push is one roster push: the item as it now is (subscription "remove"
// for a removal, RFC 6121 section 2.5.2) and the version it sets.
type Push struct {
	Item    Item
	Removed bool
	Ver     string
}

// RosterResult answers a roster get (RFC 6121 sections 2.2 and 2.6.3).
type RosterResult struct {
	// Unchanged: the client's version is current; the answer is an empty
	// result.
	Unchanged bool
	// Incremental: the answer is an empty result followed by Pushes, in
	// order; otherwise Items is the whole roster.
	Incremental bool
	Items       []Item
	Pushes      []Push
	Ver         string // the current version
}

// FormatVersion renders v as the opaque 'ver' string clients get: the
// roster's epoch and counter. A roster never written is "0".
func FormatVersion(v Version) string {
	if v == (Version{}) {
		return "0"
	}
	return v.Epoch + "-" + strconv.FormatInt(v.N, 10)
}

// ParseVersion reads a 'ver' string made by FormatVersion; ok is false for
// anything else, which the service answers with the whole roster.
func ParseVersion(s string) (Version, bool) {
	if s == "0" {
		return Version{}, true
	}
	epoch, n, found := strings.Cut(s, "-")
	if !found || epoch == "" {
		return Version{}, false
	}
	v, err := strconv.ParseInt(n, 10, 64)
	if err != nil || v < 1 {
		return Version{}, false
	}
	return Version{Epoch: epoch, N: v}, true
}

// checkAddressee returns ErrForbidden unless to, a roster IQ's 'to'
// attribute, is empty or the user's own bare JID (RFC 6121 section 2.1.5:
// a client manages only its own roster).
func checkAddressee(user jid.JID, to string) error {
	if to == "" {
		return nil
	}
	j, err := jid.Parse(to)
	if err != nil || j.Bare() != user {
		return fmt.Errorf("%w: roster of %q addressed by %s", ErrForbidden, to, user)
	}
	return nil
}

// GetRoster answers user's roster get; to is the IQ's 'to' and ver the
// client's version ("" when it sent none).
func (s *Service) GetRoster(ctx context.Context, user, to, ver string) (RosterResult, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return RosterResult{}, err
	}
	if err := checkAddressee(u, to); err != nil {
		return RosterResult{}, err
	}
	if since, ok := ParseVersion(ver); ok && ver != "" {
		changes, cur, ok, err := s.store.Changes(ctx, u.String(), since)
		if err != nil {
			return RosterResult{}, err
		}
		if ok {
			res := RosterResult{Ver: FormatVersion(cur), Unchanged: len(changes) == 0, Incremental: len(changes) > 0}
			for _, c := range changes {
				res.Pushes = append(res.Pushes, Push{Item: c.Item, Removed: c.Removed, Ver: FormatVersion(Version{Epoch: cur.Epoch, N: c.Ver})})
			}
			return res, nil
		}
	}
	items, cur, err := s.store.Roster(ctx, u.String())
	if err != nil {
		return RosterResult{}, err
	}
	return RosterResult{Items: items, Ver: FormatVersion(cur)}, nil
}

// ItemSet is the client's part of a roster set's <item/>: the only fields
// a client may set (RFC 6121 section 2.1.2; subscription and ask are the
// server's).
type ItemSet struct {
	Contact string
	Name    string
	Groups  []string
}

// SetItem adds or updates one item of user's roster (RFC 6121 sections
// 2.3 and 2.4). items are all the <item/> elements of the query. It
// returns the push to send, or ok false when nothing changed.
func (s *Service) SetItem(ctx context.Context, user, to string, items []ItemSet) (p Push, ok bool, err error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return Push{}, false, err
	}
	if err := checkAddressee(u, to); err != nil {
		return Push{}, false, err
	}
	if len(items) != 1 {
		return Push{}, false, fmt.Errorf("%w: a roster set carries %d items, exactly one is allowed", ErrBadRequest, len(items))
	}
	it := items[0]
	c, err := jid.Parse(it.Contact)
	if err != nil {
		return Push{}, false, fmt.Errorf("%w: item jid %q: %w", ErrJIDMalformed, it.Contact, err)
	}
	if err := s.checkItem(it); err != nil {
		return Push{}, false, err
	}
	groups := append([]string(nil), it.Groups...)
	var changed bool
	e, v, err := s.store.UpdateEntry(ctx, u.String(), c.String(), func(e Entry) (Entry, error) {
		changed = !e.InRoster || e.Name != it.Name || !equalStrings(e.Groups, groups)
		e.InRoster, e.Name, e.Groups = true, it.Name, groups
		return e, nil
	})
	if err != nil || !changed {
		return Push{}, false, err
	}
	return Push{Item: e.Item, Ver: FormatVersion(v)}, true, nil
}

// checkItem applies RFC 6121 section 2.3.3's limits to a set's item.
func (s *Service) checkItem(it ItemSet) error {
	if len(it.Name) > s.limits.NameBytes {
		return fmt.Errorf("%w: name is %d bytes, the limit is %d", ErrNotAcceptable, len(it.Name), s.limits.NameBytes)
	}
	if len(it.Groups) > s.limits.Groups {
		return fmt.Errorf("%w: %d groups, the limit is %d", ErrNotAcceptable, len(it.Groups), s.limits.Groups)
	}
	seen := make(map[string]bool, len(it.Groups))
	for _, g := range it.Groups {
		switch {
		case g == "":
			return fmt.Errorf("%w: empty group", ErrNotAcceptable)
		case len(g) > s.limits.GroupBytes:
			return fmt.Errorf("%w: group is %d bytes, the limit is %d", ErrNotAcceptable, len(g), s.limits.GroupBytes)
		case seen[g]:
			return fmt.Errorf("%w: group %q twice", ErrBadRequest, g)
		}
		seen[g] = true
	}
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Presence is a subscription stanza the router sends on the user's behalf.
type Presence struct {
	From, To string
	Type     SubType
}

// Raw renders p as a stanza ready to route.
func (p Presence) Raw() []byte {
	return fmt.Appendf(nil, `<presence from='%s' to='%s' type='%s'/>`, escapeAttr(p.From), escapeAttr(p.To), p.Type)
}

func escapeAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;").Replace(s)
}

// RemoveResult answers a roster remove (RFC 6121 section 2.5.2).
type RemoveResult struct {
	Push Push
	// Presences are the unsubscribe and unsubscribed stanzas that cancel
	// the subscriptions both ways, to route as the user's outbound
	// stanzas (the contact's server applies them as inbound ones).
	Presences []Presence
	// SendUnavailable: the contact had From; send it unavailable presence
	// from the user's available resources.
	SendUnavailable bool
}

// RemoveItem removes contact from user's roster, with its subscription
// states, pre-approval and pending request; ErrItemNotFound when it is not
// in the roster (RFC 6121 section 2.5.3).
func (s *Service) RemoveItem(ctx context.Context, user, to, contact string) (RemoveResult, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return RemoveResult{}, err
	}
	if err := checkAddressee(u, to); err != nil {
		return RemoveResult{}, err
	}
	c, err := jid.Parse(contact)
	if err != nil {
		return RemoveResult{}, fmt.Errorf("%w: item jid %q: %w", ErrJIDMalformed, contact, err)
	}
	var before State
	_, v, err := s.store.UpdateEntry(ctx, u.String(), c.String(), func(e Entry) (Entry, error) {
		if !e.InRoster {
			return e, fmt.Errorf("%w: %s is not in the roster", ErrItemNotFound, c)
		}
		before = e.State
		return Entry{Item: Item{Contact: e.Contact}}, nil
	})
	if err != nil {
		return RemoveResult{}, err
	}
	res := RemoveResult{
		Push:            Push{Item: Item{Contact: c.String()}, Removed: true, Ver: FormatVersion(v)},
		SendUnavailable: before.From,
	}
	if before.To || before.PendingOut {
		res.Presences = append(res.Presences, Presence{From: u.String(), To: c.String(), Type: Unsubscribe})
	}
	if before.From || before.PendingIn {
		res.Presences = append(res.Presences, Presence{From: u.String(), To: c.String(), Type: Unsubscribed})
	}
	return res, nil
}

// SubscriptionResult is the outcome of one subscription stanza on the
// user's side, with the entry as stored afterwards.
type SubscriptionResult struct {
	Outcome
	Entry       Entry
	Push        *Push // non-nil when a roster push is needed
	AutoReplies []Presence
}

// ApplySubscription runs a subscription stanza of type t through user's
// entry for contact: outbound when the user sent it, inbound when it is
// addressed to the user. raw is the stanza as received; for an inbound
// subscribe that becomes pending it is stored whole and handed out by
// PendingRequests until the user answers.
//
// Calling it twice with the same stanza is harmless: the second call finds
// the state the first one left and, by Appendix A, changes nothing and
// forwards only what the RFC always routes (outbound subscribe and
// unsubscribe).
func (s *Service) ApplySubscription(ctx context.Context, user, contact string, d Direction, t SubType, raw []byte) (SubscriptionResult, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return SubscriptionResult{}, err
	}
	c, err := jid.Parse(contact)
	if err != nil {
		return SubscriptionResult{}, fmt.Errorf("%w: contact %q: %w", ErrJIDMalformed, contact, err)
	}
	// RFC 6121 3.1.2: a full JID is treated as its bare JID.
	c = c.Bare()
	if _, err := Apply(State{}, d, t); err != nil {
		return SubscriptionResult{}, err
	}
	if d == Inbound && t == Subscribe && len(raw) == 0 {
		raw = Presence{From: c.String(), To: u.String(), Type: Subscribe}.Raw()
	}
	var o Outcome
	e, v, err := s.store.UpdateEntry(ctx, u.String(), c.String(), func(e Entry) (Entry, error) {
		var err error
		o, err = Apply(e.State, d, t)
		if err != nil {
			return e, err
		}
		switch {
		case !o.State.PendingIn:
			e.Request = nil
		case !e.PendingIn:
			e.Request = append([]byte(nil), raw...)
		}
		e.State = o.State
		if o.Push && !e.InRoster {
			// An outbound request, an approval or a pre-approval puts
			// the contact in the roster (RFC 6121 3.1.2, 3.1.5, 3.4).
			e.InRoster = true
		}
		return e, nil
	})
	if err != nil {
		return SubscriptionResult{}, err
	}
	res := SubscriptionResult{Outcome: o, Entry: e}
	if o.Push && e.InRoster {
		res.Push = &Push{Item: e.Item, Ver: FormatVersion(v)}
	}
	if o.AutoReply != 0 {
		res.AutoReplies = append(res.AutoReplies, Presence{From: u.String(), To: c.String(), Type: o.AutoReply})
	}
	return res, nil
}

// PendingRequest is a stored inbound subscription request.
type PendingRequest struct {
	Contact string
	Raw     []byte
}

// PendingRequests returns the requests waiting for user's answer, oldest
// first, to deliver at each login (RFC 6121 section 3.1.3).
func (s *Service) PendingRequests(ctx context.Context, user string) ([]PendingRequest, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return nil, err
	}
	es, err := s.store.Requests(ctx, u.String())
	if err != nil {
		return nil, err
	}
	out := make([]PendingRequest, 0, len(es))
	for _, e := range es {
		out = append(out, PendingRequest{Contact: e.Contact, Raw: e.Request})
	}
	return out, nil
}

// SubscribersOf returns the contacts with subscription from or both: those
// who receive user's presence.
func (s *Service) SubscribersOf(ctx context.Context, user string) ([]string, error) {
	return s.contacts(ctx, user, func(st State) bool { return st.From })
}

// ContactsOf returns the contacts with subscription to or both: those
// whose presence user receives, and probes at login.
func (s *Service) ContactsOf(ctx context.Context, user string) ([]string, error) {
	return s.contacts(ctx, user, func(st State) bool { return st.To })
}

func (s *Service) contacts(ctx context.Context, user string, keep func(State) bool) ([]string, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return nil, err
	}
	items, _, err := s.store.Roster(ctx, u.String())
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, it := range items {
		if keep(it.State) {
			out = append(out, it.Contact)
		}
	}
	return out, nil
}

// StoreOffline keeps raw for user, stamped, within the configured quota;
// ErrOfflineFull when it is reached. A zero stamp means now.
func (s *Service) StoreOffline(ctx context.Context, user string, raw []byte, stamp time.Time) (int64, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return 0, err
	}
	if stamp.IsZero() {
		stamp = s.now()
	}
	return s.store.StoreOffline(ctx, u.String(), OfflineMessage{Stanza: raw, Stamp: stamp}, s.quota)
}

// FetchOffline returns user's offline messages, oldest first.
func (s *Service) FetchOffline(ctx context.Context, user string) ([]OfflineMessage, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return nil, err
	}
	return s.store.FetchOffline(ctx, u.String())
}

// DeleteOffline removes user's offline messages up to and including the
// ID upTo, once they are delivered.
func (s *Service) DeleteOffline(ctx context.Context, user string, upTo int64) (int, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return 0, err
	}
	return s.store.DeleteOffline(ctx, u.String(), upTo)
}

// MaxOfflineClaim bounds how long a ClaimOffline claim may hold.
const MaxOfflineClaim = 10 * time.Minute

// ClaimOffline returns user's offline messages that no live claim holds,
// oldest first, claimed for lease (at least a millisecond, at most
// MaxOfflineClaim).
func (s *Service) ClaimOffline(ctx context.Context, user string, lease time.Duration) ([]OfflineMessage, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return nil, err
	}
	lease = min(max(lease, time.Millisecond), MaxOfflineClaim)
	now := s.now()
	return s.store.ClaimOffline(ctx, u.String(), now, now.Add(lease))
}

// DeleteOfflineIDs removes those of user's offline messages whose ID is in
// ids, once they are delivered.
func (s *Service) DeleteOfflineIDs(ctx context.Context, user string, ids []int64) (int, error) {
	u, err := parseAccountJID(user)
	if err != nil {
		return 0, err
	}
	return s.store.DeleteOfflineIDs(ctx, u.String(), ids)
}
