package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// This file is the one authorization model of every protocol and of the
// admin API: users with passwords (bcrypt hashes) in groups, and entries
// granting groups read, write and admin on destinations matched by
// wildcards, as ActiveMQ's authorizationEntries do. The front-ends
// authenticate a connection through Broker.Authenticate; the Session
// checks each send, subscription and creation, and a refusal is
// ErrForbidden, which each front-end maps to its protocol's error.

// Access is a right an authorization entry grants.
type Access uint8

const (
	// Read is consuming (subscribing to) a destination.
	Read Access = iota + 1
	// Write is sending to it.
	Write
	// Admin is creating it (a send or a subscription to a queue or topic
	// that does not exist yet creates it, as in ActiveMQ) and deleting it.
	Admin
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("access(%d)", a)
}

// Everyone, in an entry's groups, is every client, anonymous ones too.
const Everyone = "*"

// AnonymousGroup is the group of clients that gave no user name, as
// ActiveMQ's anonymousGroup.
const AnonymousGroup = "anonymous"

// User is one account of the user store.
type User struct {
	Name string
	// Password is a bcrypt hash ($2a$, $2b$ or $2y$, as hamq passwd or
	// htpasswd -B make), or for older configurations the password itself.
	Password string
	Groups   []string
}

// AuthEntry grants groups rights on the destinations of one kind whose
// names its pattern matches ("*" one level, ">" the rest).
type AuthEntry struct {
	Kind               Kind // Queue or Topic
	Pattern            string
	Read, Write, Admin []string
}

// AuthConfig is the user store and the authorization map.
type AuthConfig struct {
	// Anonymous lets in clients that give no user name.
	Anonymous bool
	// Users, when any, is who may connect with a user name; with none, a
	// name is taken as given, as by a broker without an authentication
	// plugin.
	Users []User
	// Entries, when any, make every send, subscription and creation need
	// a grant; a destination no entry matches is refused. With none,
	// every connected client may do anything.
	Entries []AuthEntry
	// AdminGroups may use the admin API and the console.
	AdminGroups []string
}

// HashPassword makes the bcrypt hash a User's Password holds.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// IsPasswordHash reports whether p is a bcrypt hash rather than a password.
func IsPasswordHash(p string) bool {
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(p, prefix) {
			_, err := bcrypt.Cost([]byte(p))
			return err == nil
		}
	}
	return false
}

// Auth checks clients against an AuthConfig, which Update replaces while
// it runs (a users file re-read on change). One Auth serves every broker a
// process runs, so its counters outlive a master's term.
type Auth struct {
	state atomic.Pointer[authState]
	// refused counts refusals: [0] logins, then by Access.
	refused [4]atomic.Int64
}

type authState struct {
	cfg         AuthConfig
	users       map[string]*userState
	authorizing bool
	// decisions caches Authorize's answers, which a send asks for each
	// time; dropped with the state on Update.
	decisions sync.Map // decisionKey -> bool
	cached    atomic.Int32
}

type userState struct {
	User
	// verified is the SHA-256 of the password last found good: bcrypt
	// costs tens of milliseconds a check, and clients reconnect.
	verified atomic.Pointer[[32]byte]
}

type decisionKey struct {
	user string
	dest Destination
	acc  Access
}

// maxCachedDecisions bounds the cache (MQTT clients may name a topic each).
const maxCachedDecisions = 100_000

// NewAuth makes an Auth of cfg.
func NewAuth(cfg AuthConfig) *Auth {
	a := &Auth{}
	a.Update(cfg)
	return a
}

// Update replaces the configuration; connected clients keep their login,
// and their next send or subscription is checked against the new grants.
func (a *Auth) Update(cfg AuthConfig) {
	st := &authState{cfg: cfg, users: map[string]*userState{}, authorizing: len(cfg.Entries) > 0}
	for _, u := range cfg.Users {
		st.users[u.Name] = &userState{User: u}
	}
	a.state.Store(st)
}

// Config is the configuration in force.
func (a *Auth) Config() AuthConfig { return a.state.Load().cfg }

// Enabled reports whether anything restricts clients: users to log in
// with, anonymous clients refused, or grants. The admin API then asks for
// an administrator's login.
func (a *Auth) Enabled() bool {
	st := a.state.Load()
	return len(st.cfg.Users) > 0 || !st.cfg.Anonymous || st.authorizing
}

// Authorizing reports whether sends and subscriptions need grants.
func (a *Auth) Authorizing() bool { return a.state.Load().authorizing }

// Authenticate checks a client's credentials; an empty user is an
// anonymous client. A failure is ErrUnauthorized, counted.
func (a *Auth) Authenticate(user, password string) error {
	err := a.state.Load().authenticate(user, password)
	if err != nil {
		a.refused[0].Add(1)
	}
	return err
}

func (st *authState) authenticate(user, password string) error {
	if user == "" {
		if !st.cfg.Anonymous {
			return fmt.Errorf("%w: anonymous clients are not allowed", ErrUnauthorized)
		}
		return nil
	}
	if len(st.users) == 0 {
		return nil
	}
	u := st.users[user]
	if u == nil || !u.check(password) {
		return fmt.Errorf("%w: wrong user name or password for %q", ErrUnauthorized, user)
	}
	return nil
}

func (u *userState) check(password string) bool {
	sum := sha256.Sum256([]byte(password))
	if v := u.verified.Load(); v != nil && subtle.ConstantTimeCompare(v[:], sum[:]) == 1 {
		return true
	}
	var ok bool
	if IsPasswordHash(u.Password) {
		ok = bcrypt.CompareHashAndPassword([]byte(u.Password), []byte(password)) == nil
	} else {
		ok = subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	}
	if ok {
		u.verified.Store(&sum)
	}
	return ok
}

// Groups lists the groups user belongs to; an anonymous client (user "")
// is in AnonymousGroup. Everyone is everyone's.
func (a *Auth) Groups(user string) []string { return a.state.Load().groups(user) }

func (st *authState) groups(user string) []string {
	if user == "" {
		return []string{Everyone, AnonymousGroup}
	}
	g := []string{Everyone}
	if u := st.users[user]; u != nil {
		g = append(g, u.Groups...)
	}
	return g
}

// IsAdmin reports whether user, authenticated, may use the admin API: it
// is in one of the AdminGroups.
func (a *Auth) IsAdmin(user string) bool {
	st := a.state.Load()
	if user == "" {
		return false
	}
	for _, g := range st.groups(user) {
		if g != Everyone && slices.Contains(st.cfg.AdminGroups, g) {
			return true
		}
	}
	return false
}

// Authorize checks that user may have acc on d; a refusal is ErrForbidden
// (not counted here: Session.Authorize counts and logs). Temporary
// destinations need no grant: anyone may reply to one, and only the
// connection that made it may consume it (ErrTempNotOwned).
func (a *Auth) Authorize(user string, d Destination, acc Access) error {
	st := a.state.Load()
	if !st.authorizing || d.Kind == TempQueue || d.Kind == TempTopic {
		return nil
	}
	k := decisionKey{user, d, acc}
	ok, cached := st.decisions.Load(k)
	if !cached {
		ok = st.allowed(user, d, acc)
		if st.cached.Add(1) <= maxCachedDecisions {
			st.decisions.Store(k, ok)
		}
	}
	if ok.(bool) {
		return nil
	}
	who := fmt.Sprintf("user %q", user)
	if user == "" {
		who = "an anonymous client"
	}
	verb := map[Access]string{Read: "read from", Write: "write to", Admin: "create or delete"}[acc]
	return fmt.Errorf("%w: %s may not %s %s", ErrForbidden, who, verb, d)
}

func (st *authState) allowed(user string, d Destination, acc Access) bool {
	groups := st.groups(user)
	for _, e := range st.cfg.Entries {
		if e.Kind != d.Kind || !covers(e.Pattern, d.Name) {
			continue
		}
		var granted []string
		switch acc {
		case Read:
			granted = e.Read
		case Write:
			granted = e.Write
		case Admin:
			granted = e.Admin
		}
		for _, g := range granted {
			if slices.Contains(groups, g) {
				return true
			}
		}
	}
	return false
}

// covers reports whether every name that sub matches (a destination name,
// or a subscription's pattern with wildcards) is matched by pattern: a
// subscription to sensors.* needs a grant on sensors.* or sensors.>, not
// on sensors.kitchen alone.
func covers(pattern, sub string) bool {
	for {
		p, prest, pmore := strings.Cut(pattern, ".")
		if p == ">" {
			return true
		}
		s, srest, smore := strings.Cut(sub, ".")
		if s == ">" || (p != "*" && p != s) {
			return false
		}
		if !pmore || !smore {
			return !pmore && !smore || (pmore && prest == ">")
		}
		pattern, sub = prest, srest
	}
}

// Refusals are the refusals counted since the process started, by what
// was refused: "login" (a wrong password, an anonymous client where none
// may connect), "read", "write" and "admin".
func (a *Auth) Refusals() map[string]int64 {
	return map[string]int64{"login": a.refused[0].Load(), Read.String(): a.refused[Read].Load(),
		Write.String(): a.refused[Write].Load(), Admin.String(): a.refused[Admin].Load()}
}

// CountRefusal counts a login refused outside the broker (the admin API's).
func (a *Auth) CountRefusal() { a.refused[0].Add(1) }

// Auth is the broker's user store and authorization map.
func (b *Broker) Auth() *Auth { return b.auth }

// authOf is the Auth a broker uses: the shared one, or one made of the
// older Users and Anonymous settings.
func authOf(cfg Config) *Auth {
	if cfg.Auth != nil {
		return cfg.Auth
	}
	users := make([]User, 0, len(cfg.Users))
	for name, pw := range cfg.Users {
		users = append(users, User{Name: name, Password: pw})
	}
	return NewAuth(AuthConfig{Anonymous: cfg.Anonymous, Users: users})
}

// Authenticate checks a client's credentials against the user store; an
// empty user is an anonymous client. Every front-end calls it before
// Connect, so that one store serves every protocol.
func (b *Broker) Authenticate(user, password string) error {
	return b.auth.Authenticate(user, password)
}

// SetPeer says who is behind a session whose connection came after it:
// an MQTT session outlives its connections, and the client that resumes
// it may log in as another user.
func (s *Session) SetPeer(user, remoteAddr string) {
	s.mu.Lock()
	s.info.User, s.info.RemoteAddr = user, remoteAddr
	s.mu.Unlock()
}

func (s *Session) user() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info.User
}

// Authorize checks that the session's user may have acc on d, and the
// admin right too when the access would create d. A refusal is
// ErrForbidden, logged and counted. Front-ends call it where they accept
// an intent before any message (an AMQP sending link's target, an MQTT
// PUBLISH before its retained copy is kept); Send and Subscribe call it
// themselves.
func (s *Session) Authorize(d Destination, acc Access) error {
	a := s.b.auth
	if !a.Authorizing() {
		return nil
	}
	user := s.user()
	err := a.Authorize(user, d, acc)
	if err == nil && acc != Admin && s.b.creates(d, acc) {
		acc = Admin
		err = a.Authorize(user, d, Admin)
	}
	if err != nil {
		a.refused[acc].Add(1)
		s.mu.Lock()
		info := s.info
		s.mu.Unlock()
		s.b.log.Warn("refused", "user", user, "access", acc.String(), "destination", d.String(),
			"protocol", info.Protocol, "remote", info.RemoteAddr, "client", info.ClientID)
	}
	return err
}

// Permitted reports whether the session's user may have acc on d, neither
// logging nor counting: for a front-end asked again about what the core
// already refused (mochi's ACL check after a refused subscription).
func (s *Session) Permitted(d Destination, acc Access) bool {
	return s.b.auth.Authorize(s.user(), d, acc) == nil
}

// creates reports whether acc on d makes the destination exist: a send
// to, or a subscription to a queue that is not there yet.
func (b *Broker) creates(d Destination, acc Access) bool {
	if d.Kind != Queue && !(d.Kind == Topic && acc == Write) {
		return false
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.dests[d] == nil
}
