// Package config is hamq's configuration: one struct, its defaults, and a
// YAML loader whose every error names the file, the line and the key.
//
// It imports core and protocols only for their option types' defaults.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/ha"
	"github.com/hamq/hamq/protocols/amqp"
	"github.com/hamq/hamq/protocols/mqtt"
	"github.com/hamq/hamq/protocols/stomp"
	"github.com/hamq/hamq/protocols/ws"
)

// Config is everything conf/hamq.yaml can say.
type Config struct {
	Broker  Broker   `yaml:"broker"`
	Log     Log      `yaml:"log"`
	STOMP   STOMP    `yaml:"stomp"`
	MQTT    MQTT     `yaml:"mqtt"`
	AMQP    AMQP     `yaml:"amqp"`
	WS      WS       `yaml:"ws"`
	HTTP    Listener `yaml:"http"`
	TLS     TLS      `yaml:"tls"`
	Auth    Auth     `yaml:"auth"`
	Policy  Policy   `yaml:"policy"`
	Cluster Cluster  `yaml:"cluster"`
}

type Broker struct {
	Name    string `yaml:"name"`
	DataDir string `yaml:"dataDir"`
}

type Log struct {
	Level  string `yaml:"level" enum:"debug,info,warn,error"`
	Format string `yaml:"format" enum:"text,json"`
}

// Listener is an address to listen on, or "off".
type Listener struct {
	Address Address `yaml:"address"`
}

type STOMP struct {
	Address        Address  `yaml:"address"`
	TLSAddress     Address  `yaml:"tlsAddress"`
	MaxConnections int      `yaml:"maxConnections" min:"1"`
	MaxFrameSize   Size     `yaml:"maxFrameSize" min:"1024"`
	HeartBeat      Duration `yaml:"heartBeat" min:"0"`
}

type MQTT struct {
	Address        Address  `yaml:"address"`
	TLSAddress     Address  `yaml:"tlsAddress"`
	MaxConnections int      `yaml:"maxConnections" min:"1"`
	MaxPacketSize  Size     `yaml:"maxPacketSize" min:"1024"`
	MaxInflight    int      `yaml:"maxInflight" min:"1"`
	SessionExpiry  Duration `yaml:"sessionExpiry" min:"1000000000"`
}

type AMQP struct {
	Address        Address  `yaml:"address"`
	TLSAddress     Address  `yaml:"tlsAddress"`
	MaxConnections int      `yaml:"maxConnections" min:"1"`
	MaxFrameSize   Size     `yaml:"maxFrameSize" min:"512" max:"4294967295"` // AMQP's frame size field is 32 bits
	MaxMessageSize Size     `yaml:"maxMessageSize" min:"1024"`
	IdleTimeout    Duration `yaml:"idleTimeout" min:"0"`
	BareAddress    string   `yaml:"bareAddress" enum:"queue,topic"`
}

// TLS is the certificate of the TLS listeners (each protocol's
// tlsAddress), which open only when it is given.
type TLS struct {
	CertFile string `yaml:"certFile" file:"true"`
	KeyFile  string `yaml:"keyFile" file:"true"`
	// ClientCAFile, when set, makes every client present a certificate
	// one of its CAs signed.
	ClientCAFile string `yaml:"clientCAFile" file:"true"`
}

// Enabled reports whether the TLS listeners open.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Config loads the certificate for the listeners; TLS 1.2 at least.
func (t TLS) Config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	// No TLS 1.3 session tickets: they arrive after the handshake, and a
	// client reading its socket in one thread while writing it in another
	// (Debian's stomp.py 8.0, jasonrbriggs/stomp.py#450) then lost its
	// CONNECT or crashed (2 connects of 60 here). Resumption is worth
	// little to connections that last.
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, SessionTicketsDisabled: true}
	if t.ClientCAFile != "" {
		if cfg.ClientCAs, err = t.clientCAs(); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func (t TLS) clientCAs() (*x509.CertPool, error) {
	data, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errNoCertificate
	}
	return pool, nil
}

var errNoCertificate = errors.New("no PEM certificate in it")

// validate checks the section as a whole once its keys are read.
func (t TLS) validate() (key string, err error) {
	switch {
	case t.CertFile == "" && t.KeyFile == "" && t.ClientCAFile != "":
		return "clientCAFile", errors.New("needs certFile and keyFile")
	case t.CertFile == "" && t.KeyFile == "":
		return "", nil
	case t.CertFile == "":
		return "certFile", errors.New("must be given with keyFile")
	case t.KeyFile == "":
		return "keyFile", errors.New("must be given with certFile")
	}
	// The file tag has checked that both can be read.
	data, _ := os.ReadFile(t.CertFile)
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		return "certFile", errNoCertificate
	} else if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return "certFile", fmt.Errorf("not a certificate: %w", err)
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		return "keyFile", fmt.Errorf("not a key for certFile's certificate: %w", err)
	}
	if t.ClientCAFile != "" {
		if _, err := t.clientCAs(); err != nil {
			return "clientCAFile", err
		}
	}
	return "", nil
}

// Auth is the user store and the authorization map that every front-end
// and the admin API check clients against (core.AuthConfig).
type Auth struct {
	Anonymous bool   `yaml:"anonymous"`
	Users     []User `yaml:"users"`
	// UsersFile holds more users, in a users: list of the same form; it
	// is read again whenever it changes.
	UsersFile     string       `yaml:"usersFile" file:"true"`
	AdminGroups   []string     `yaml:"adminGroups" groups:"true"`
	Authorization []AuthzEntry `yaml:"authorization"`
}

// User is an account: "name:password" in the short form, or a section
// with its groups.
type User struct {
	Name     string   `yaml:"name"`
	Password string   `yaml:"password"`
	Groups   []string `yaml:"groups" groups:"true"`
}

// fromScalar reads the short form, name:password.
func (u *User) fromScalar(s string) error {
	name, password, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return fmt.Errorf("want entries of the form name:password, found %q", s)
	}
	u.Name, u.Password = name, password
	return nil
}

func (u User) validate() (string, error) {
	switch {
	case u.Name == "":
		return "name", errors.New("must not be empty")
	case u.Password == "":
		return "password", errors.New("must not be empty (a bcrypt hash from hamq passwd)")
	case strings.HasPrefix(u.Password, "$2") && !core.IsPasswordHash(u.Password):
		return "password", errors.New("looks like a bcrypt hash but is not a valid one")
	}
	return "", nil
}

// AuthzEntry grants groups read, write and admin on the queues or the
// topics its pattern matches, as one of ActiveMQ's authorizationEntries.
type AuthzEntry struct {
	Queue string   `yaml:"queue"`
	Topic string   `yaml:"topic"`
	Read  []string `yaml:"read" groups:"true"`
	Write []string `yaml:"write" groups:"true"`
	Admin []string `yaml:"admin" groups:"true"`
}

func (e AuthzEntry) validate() (string, error) {
	switch {
	case e.Queue == "" && e.Topic == "":
		return "", errors.New("an entry names a queue or a topic pattern")
	case e.Queue != "" && e.Topic != "":
		return "topic", errors.New("an entry names a queue or a topic pattern, not both")
	}
	key, pattern := "queue", e.Queue
	if e.Topic != "" {
		key, pattern = "topic", e.Topic
	}
	levels := strings.Split(pattern, ".")
	for i, l := range levels {
		if l == "" || (strings.ContainsAny(l, "*>") && l != "*" && l != ">") || (l == ">" && i != len(levels)-1) {
			return key, fmt.Errorf("%q is not a destination pattern (dot-separated names, * for one level, > last for the rest)", pattern)
		}
	}
	return "", nil
}

// usersFile is what auth.usersFile holds.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads a users file; its errors name the file, line and key.
func LoadUsers(path string) ([]User, error) {
	var f usersFile
	if err := loadInto(path, &f); err != nil {
		return nil, err
	}
	return f.Users, nil
}

// AuthConfig is the core's user store and authorization map: the users of
// the configuration and of its users file, read now.
func (a Auth) AuthConfig() (core.AuthConfig, error) {
	users := a.Users
	if a.UsersFile != "" {
		more, err := LoadUsers(a.UsersFile)
		if err != nil {
			return core.AuthConfig{}, err
		}
		users = append(slices.Clone(users), more...)
	}
	out := core.AuthConfig{Anonymous: a.Anonymous, AdminGroups: a.AdminGroups}
	for _, u := range users {
		out.Users = append(out.Users, core.User{Name: u.Name, Password: u.Password, Groups: u.Groups})
	}
	for _, e := range a.Authorization {
		ce := core.AuthEntry{Kind: core.Queue, Pattern: e.Queue, Read: e.Read, Write: e.Write, Admin: e.Admin}
		if e.Topic != "" {
			ce.Kind, ce.Pattern = core.Topic, e.Topic
		}
		out.Entries = append(out.Entries, ce)
	}
	return out, nil
}

// WS is the WebSocket listener carrying STOMP and MQTT.
type WS struct {
	Address        Address  `yaml:"address"`
	TLSAddress     Address  `yaml:"tlsAddress"`
	AllowedOrigins []string `yaml:"allowedOrigins"`
}

// Policy is the destination core's behaviour (core.Config).
type Policy struct {
	MaxRedeliveries       int      `yaml:"maxRedeliveries" min:"-1"`
	RedeliveryDelay       Duration `yaml:"redeliveryDelay" min:"0"`
	RedeliveryBackoff     float64  `yaml:"redeliveryBackoff" min:"1"`
	MaxRedeliveryDelay    Duration `yaml:"maxRedeliveryDelay" min:"0"`
	DeadLetterPrefix      string   `yaml:"deadLetterPrefix" nonempty:"true"`
	SharedDeadLetterQueue string   `yaml:"sharedDeadLetterQueue"`
	ExpiredToDLQ          bool     `yaml:"expiredToDLQ"`
	MemoryLimit           Size     `yaml:"memoryLimit" min:"1024"`
	SendTimeout           Duration `yaml:"sendTimeout" min:"1"`
	SpoolAfter            Size     `yaml:"spoolAfter" min:"0"`
	TopicPendingLimit     int      `yaml:"topicPendingLimit" min:"1"`
	Prefetch              int      `yaml:"prefetch" min:"1"`
	ExpirySweep           Duration `yaml:"expirySweep" min:"1"`
	Dedup                 []Dedup  `yaml:"dedup"`
}

// Dedup is one duplicate window rule: the first whose destinations
// pattern matches a destination's name applies to it.
type Dedup struct {
	Destinations string   `yaml:"destinations" nonempty:"true"`
	Size         int      `yaml:"size" min:"0"`
	TTL          Duration `yaml:"ttl" min:"1"`
	MessageID    bool     `yaml:"messageId"`
}

// Cluster is the HA part, named as ActiveMQ's replicatedLevelDB names it;
// broker.name is its brokerName. Without zkAddress hamq runs standalone.
type Cluster struct {
	ZKAddress        string   `yaml:"zkAddress"`
	ZKPath           string   `yaml:"zkPath" nonempty:"true"`
	ZKSessionTimeout Duration `yaml:"zkSessionTimeout" min:"1000000000"`
	Replicas         int      `yaml:"replicas" min:"1"`
	Bind             Address  `yaml:"bind"`
	Hostname         string   `yaml:"hostname"`
	Sync             string   `yaml:"sync" enum:"quorum_mem,quorum_disk"`
	ConfirmTimeout   Duration `yaml:"confirmTimeout" min:"1"`
	Secret           string   `yaml:"secret"`
}

// Default is the configuration conf/hamq.yaml documents (a test keeps the
// two equal).
func Default() Config {
	c := core.DefaultConfig()
	s := stomp.DefaultOptions()
	m := mqtt.DefaultOptions()
	a := amqp.DefaultOptions()
	return Config{
		Broker: Broker{Name: "localhost", DataDir: "./data"},
		Log:    Log{Level: "info", Format: "text"},
		STOMP: STOMP{Address: "127.0.0.1:61613", TLSAddress: "127.0.0.1:61612", MaxConnections: s.MaxConnections,
			MaxFrameSize: Size(s.MaxFrameSize), HeartBeat: Duration(s.HeartBeat)},
		MQTT: MQTT{Address: "127.0.0.1:1883", TLSAddress: "127.0.0.1:8883", MaxConnections: int(m.MaxConnections), MaxPacketSize: Size(m.MaxPacketSize),
			MaxInflight: m.MaxInflight, SessionExpiry: Duration(time.Duration(m.SessionExpiry) * time.Second)},
		AMQP: AMQP{Address: "127.0.0.1:5672", TLSAddress: "127.0.0.1:5671", MaxConnections: a.MaxConnections, MaxFrameSize: Size(a.MaxFrameSize),
			MaxMessageSize: Size(a.MaxMessageSize), IdleTimeout: Duration(a.IdleTimeout), BareAddress: a.BareAddress.String()},
		Auth: Auth{Anonymous: c.Anonymous, Users: []User{}, AdminGroups: []string{"admins"}, Authorization: []AuthzEntry{}},
		WS:   WS{Address: "127.0.0.1:61614", TLSAddress: "127.0.0.1:61615", AllowedOrigins: ws.DefaultOptions().AllowedOrigins},
		HTTP: Listener{"127.0.0.1:8161"},
		Policy: Policy{
			MaxRedeliveries: c.MaxRedeliveries, RedeliveryDelay: Duration(c.RedeliveryDelay),
			RedeliveryBackoff: c.RedeliveryBackoff, MaxRedeliveryDelay: Duration(c.MaxRedeliveryDelay),
			DeadLetterPrefix: c.DeadLetterPrefix, SharedDeadLetterQueue: c.SharedDeadLetterQueue,
			ExpiredToDLQ: c.ExpiredToDLQ, MemoryLimit: Size(c.MemoryLimit), SendTimeout: Duration(c.SendTimeout),
			SpoolAfter:        Size(c.SpoolAfter),
			TopicPendingLimit: c.TopicPendingLimit, Prefetch: c.DefaultPrefetch, ExpirySweep: Duration(c.ExpirySweep),
			Dedup: dedupOf(c.Dedup),
		},
		Cluster: Cluster{ZKPath: "/hamq/leveldb-stores", ZKSessionTimeout: Duration(2 * time.Second), Replicas: 3,
			Bind: "127.0.0.1:61619", Sync: ha.SyncQuorumMem, ConfirmTimeout: Duration(30 * time.Second)},
	}
}

// HA gives the cluster node's configuration.
func (c Config) HA() ha.Config {
	k := c.Cluster
	admin := ""
	if !c.HTTP.Address.Off() {
		admin = "http://" + string(c.HTTP.Address)
	}
	return ha.Config{BrokerName: c.Broker.Name, Replicas: k.Replicas, Bind: string(k.Bind), Hostname: k.Hostname,
		ZKAddress: k.ZKAddress, ZKPath: k.ZKPath, ZKSessionTimeout: time.Duration(k.ZKSessionTimeout), Sync: k.Sync,
		Admin: admin, ConfirmTimeout: time.Duration(k.ConfirmTimeout), Secret: k.Secret}
}

// Core gives the destination core's part.
func (c Config) Core() core.Config {
	p := c.Policy
	return core.Config{
		MaxRedeliveries: p.MaxRedeliveries, RedeliveryDelay: time.Duration(p.RedeliveryDelay),
		RedeliveryBackoff: p.RedeliveryBackoff, MaxRedeliveryDelay: time.Duration(p.MaxRedeliveryDelay),
		DeadLetterPrefix: p.DeadLetterPrefix, SharedDeadLetterQueue: p.SharedDeadLetterQueue,
		ExpiredToDLQ: p.ExpiredToDLQ, MemoryLimit: int64(p.MemoryLimit), SendTimeout: time.Duration(p.SendTimeout),
		SpoolAfter:        int64(p.SpoolAfter),
		TopicPendingLimit: p.TopicPendingLimit, DefaultPrefetch: p.Prefetch, ExpirySweep: time.Duration(p.ExpirySweep),
		Anonymous: c.Auth.Anonymous,
		Dedup:     p.coreDedup(),
	}
}

func dedupOf(rules []core.DedupRule) []Dedup {
	out := make([]Dedup, 0, len(rules))
	for _, r := range rules {
		out = append(out, Dedup{Destinations: r.Pattern, Size: r.Size, TTL: Duration(r.TTL), MessageID: r.MessageID})
	}
	return out
}

func (p Policy) coreDedup() []core.DedupRule {
	out := make([]core.DedupRule, 0, len(p.Dedup))
	for _, r := range p.Dedup {
		out = append(out, core.DedupRule{Pattern: r.Destinations, Size: r.Size, TTL: time.Duration(r.TTL), MessageID: r.MessageID})
	}
	return out
}

// AMQPOptions gives the AMQP listener's limits.
func (c Config) AMQPOptions() amqp.Options {
	o := amqp.DefaultOptions()
	o.MaxConnections = c.AMQP.MaxConnections
	o.MaxFrameSize = uint32(c.AMQP.MaxFrameSize)
	o.MaxMessageSize = uint64(c.AMQP.MaxMessageSize)
	o.IdleTimeout = time.Duration(c.AMQP.IdleTimeout)
	o.BareAddress = core.Queue
	if c.AMQP.BareAddress == "topic" {
		o.BareAddress = core.Topic
	}
	o.ContainerID = c.Broker.Name
	return o
}

// STOMPOptions gives the STOMP listener's limits.
func (c Config) STOMPOptions() stomp.Options {
	o := stomp.DefaultOptions()
	o.MaxConnections = c.STOMP.MaxConnections
	o.MaxFrameSize = int64(c.STOMP.MaxFrameSize)
	o.HeartBeat = time.Duration(c.STOMP.HeartBeat)
	return o
}

// MQTTOptions gives the MQTT listener's limits.
func (c Config) MQTTOptions() mqtt.Options {
	o := mqtt.DefaultOptions()
	o.MaxConnections = int64(c.MQTT.MaxConnections)
	o.MaxPacketSize = uint32(c.MQTT.MaxPacketSize)
	o.MaxInflight = c.MQTT.MaxInflight
	o.SessionExpiry = uint32(time.Duration(c.MQTT.SessionExpiry) / time.Second)
	return o
}

// WSOptions gives the WebSocket listener's options.
func (c Config) WSOptions() ws.Options { return ws.Options{AllowedOrigins: c.WS.AllowedOrigins} }

// Address is host:port, or "off" for a listener that stays closed.
type Address string

// Off reports whether the listener is disabled.
func (a Address) Off() bool { return a == "off" }

func parseAddress(s string) (Address, error) {
	if s == "off" {
		return "off", nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an address (want host:port, e.g. 127.0.0.1:61613, or off)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q has no valid port (0 to 65535)", s)
	}
	return Address(s), nil
}

// ParseAddress checks a listener address given on the command line.
func ParseAddress(s string) (Address, error) { return parseAddress(s) }

// Size is a number of bytes, written as 100MiB, 64mb, 4096 and the like
// (units are powers of 1024, as in ActiveMQ).
type Size int64

var sizeUnits = map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}

func parseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size (want e.g. 100MiB, 64mb or 4096)", s)
	}
	return Size(f * float64(mult)), nil
}

func (s Size) String() string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if int64(s) >= u.n && int64(s)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.n, u.name)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Duration is a Go duration: 500ms, 10s, 1m.
type Duration time.Duration

func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. 500ms, 10s or 1m)", s)
	}
	return Duration(d), nil
}

func (d Duration) String() string { return time.Duration(d).String() }
