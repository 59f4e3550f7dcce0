package metrics

// Roster is the metrics of the roster service's account store.
type Roster struct {
	// Store measures each store operation (a Postgres transaction in a
	// cluster, SQLite in one process).
	Store *Ops
}

// Roster registers and returns the roster service's metrics.
func (r *Registry) Roster() *Roster {
	return &Roster{Store: r.ops("roster_store", "Roster store (Postgres or SQLite)")}
}

// Presence is the metrics of the presence service's session store.
type Presence struct {
	// Store measures each store operation (Redis in a cluster, memory in
	// one process).
	Store *Ops
}

// Presence registers and returns the presence service's metrics.
func (r *Registry) Presence() *Presence {
	return &Presence{Store: r.ops("presence_store", "Presence store (Redis or memory)")}
}
