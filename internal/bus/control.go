package bus

// Control is the subject where a c2s node answers control requests
// (proto/bus/v1 ControlRequest) as NATS requests: kick, drain, broadcast.
func (s Subjects) Control(node string) string { return s.Prefix + ".control." + node }

// NodeBucket is the key-value bucket where every process of the
// deployment keeps its NodeStatus (proto/bus/v1) under NodeKey; a key
// expires when its process stops renewing it.
func (s Subjects) NodeBucket() string { return s.token() + "_nodes" }

// NodeKey is the key of one process in NodeBucket.
func NodeKey(service, node string) string { return service + "." + node }
