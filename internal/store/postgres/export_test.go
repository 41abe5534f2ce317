package postgres

// DropInvalidations makes the replica drop the invalidation notifications
// drop returns true for, as a transaction pooler or a lost packet would.
func (r *Replica) DropInvalidations(drop func(seq int64) bool) { r.skip.Store(&drop) }
