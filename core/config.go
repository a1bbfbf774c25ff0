package core

import "time"

// Config holds the core's policies. Start from DefaultConfig and change what
// differs.
type Config struct {
	// MaxRedeliveries is how many times a nacked message is delivered again
	// before it goes to the dead-letter queue; -1 means forever.
	MaxRedeliveries int
	// RedeliveryDelay is the wait before the first redelivery; each further
	// one waits RedeliveryBackoff times longer, up to MaxRedeliveryDelay.
	RedeliveryDelay    time.Duration
	RedeliveryBackoff  float64
	MaxRedeliveryDelay time.Duration
	// DeadLetterPrefix names a queue's dead-letter queue (prefix + queue
	// name); SharedDeadLetterQueue, when set, is used for every destination.
	DeadLetterPrefix      string
	SharedDeadLetterQueue string
	// ExpiredToDLQ sends expired messages to the dead-letter queue rather
	// than dropping them.
	ExpiredToDLQ bool
	// MemoryLimit bounds the bytes of messages one destination holds;
	// producers wait at the limit, for at most SendTimeout.
	MemoryLimit int64
	SendTimeout time.Duration
	// SpoolAfter is how many bytes of persistent message bodies a queue
	// (or durable subscription) keeps in memory; the bodies of the
	// messages behind them stay only in the store until dispatched, and
	// no longer count against MemoryLimit. 0 keeps every body in memory.
	SpoolAfter int64
	// TopicPendingLimit bounds the messages waiting for one non-durable
	// topic subscriber; beyond it the oldest are dropped and counted.
	TopicPendingLimit int
	// DefaultPrefetch is the credit of a subscription that asks for none.
	DefaultPrefetch int
	// ExpirySweep is how often stored messages are checked for expiry.
	ExpirySweep time.Duration
	// Users maps user names to passwords. When it names any, a client
	// that gives a user name must give its password; when empty, names
	// are taken as given, as by a broker without an authentication plugin.
	Users map[string]string
	// Anonymous lets in clients that give no user name.
	Anonymous bool
	// Auth, when set, replaces Users and Anonymous: the user store and
	// authorization map (auth.go) shared by every broker the process runs.
	Auth *Auth
	// Dedup are the duplicate windows by destination (dedup.go).
	Dedup []DedupRule
}

// DefaultConfig is what conf/hamq.yaml documents.
func DefaultConfig() Config {
	return Config{
		MaxRedeliveries:    6,
		RedeliveryDelay:    time.Second,
		RedeliveryBackoff:  2,
		MaxRedeliveryDelay: time.Minute,
		DeadLetterPrefix:   "DLQ.",
		ExpiredToDLQ:       true,
		MemoryLimit:        64 << 20,
		SendTimeout:        30 * time.Second,
		SpoolAfter:         4 << 20,
		TopicPendingLimit:  1000,
		DefaultPrefetch:    1000,
		ExpirySweep:        time.Second,
		Anonymous:          true,
		Dedup:              DefaultDedup,
	}
}
