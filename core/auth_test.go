package core

import (
	"context"
	"errors"
	"testing"
)

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"orders", "orders", true},
		{"orders", "orders.eu", false},
		{"orders.>", "orders", true},
		{"orders.>", "orders.eu.paris", true},
		{"orders.*", "orders.eu", true},
		{"orders.*", "orders.eu.paris", false},
		{"orders.*", "orders.*", true},
		{"orders.*", "orders.>", false},
		{"orders.eu", "orders.*", false},
		{">", "anything.at.all", true},
		{"*.eu", "orders.eu", true},
		{"*.eu", "*.eu", true},
	} {
		if got := covers(tc.pattern, tc.name); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// authConfig is the README's example: consumers read orders, producers
// write them and may create them, admins do anything; sensors' topics
// are everyone's to read.
func authConfig(t *testing.T) AuthConfig {
	hash, err := HashPassword("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	return AuthConfig{
		Anonymous: true,
		Users: []User{
			{Name: "admin", Password: hash, Groups: []string{"admins"}},
			{Name: "alice", Password: "alice-pw", Groups: []string{"producers"}},
			{Name: "bob", Password: "bob-pw", Groups: []string{"consumers"}},
		},
		Entries: []AuthEntry{
			{Kind: Queue, Pattern: ">", Read: []string{"admins"}, Write: []string{"admins"}, Admin: []string{"admins"}},
			{Kind: Queue, Pattern: "orders.>", Read: []string{"consumers"}, Write: []string{"producers"}, Admin: []string{"producers"}},
			{Kind: Topic, Pattern: "sensors.>", Read: []string{Everyone}, Write: []string{"producers"}, Admin: []string{"producers"}},
		},
		AdminGroups: []string{"admins"},
	}
}

func TestAuthenticate(t *testing.T) {
	a := NewAuth(authConfig(t))
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{
		{"admin", "s3cret", true},
		{"admin", "s3cret", true}, // the cached check
		{"admin", "wrong", false},
		{"alice", "alice-pw", true},
		{"alice", "bob-pw", false},
		{"mallory", "x", false},
		{"", "", true},
	} {
		err := a.Authenticate(tc.user, tc.password)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUnauthorized)) {
			t.Errorf("Authenticate(%q, %q) = %v, want ok %v", tc.user, tc.password, err, tc.ok)
		}
	}
	if got := a.Refusals()["login"]; got != 3 {
		t.Errorf("refused logins counted %d, want 3", got)
	}
	if !a.IsAdmin("admin") || a.IsAdmin("alice") || a.IsAdmin("") {
		t.Error("IsAdmin wrong")
	}
	if !a.Enabled() || !a.Authorizing() {
		t.Error("a configured Auth says it is not enabled")
	}
	open := NewAuth(AuthConfig{Anonymous: true})
	if open.Enabled() || open.Authorizing() || open.Authenticate("anyone", "anything") != nil {
		t.Error("an Auth without users or entries restricts something")
	}
}

func TestAuthorizeEnforcedBySession(t *testing.T) {
	auth := NewAuth(authConfig(t))
	h := newHarness(t, func(c *Config) { c.Auth = auth })
	ctx := context.Background()
	as := func(user string) *Session {
		s, err := h.b.Connect(ConnInfo{Protocol: "test", User: user})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	alice, bob, anon := as("alice"), as("bob"), as("")
	q := Destination{Kind: Queue, Name: "orders.eu"}
	// bob may read orders but not create the queue: alice's send makes it.
	if _, err := bob.Subscribe(SubSpec{Dest: q}, make(chanConsumer, 10)); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob subscribing to a queue that does not exist yet: %v, want ErrForbidden", err)
	}
	if err := alice.Send(ctx, "", &Message{Dest: q, Body: []byte("o1")}); err != nil {
		t.Fatalf("alice's send: %v", err)
	}
	c := make(chanConsumer, 10)
	if _, err := bob.Subscribe(SubSpec{Dest: q}, c); err != nil {
		t.Fatalf("bob's subscription: %v", err)
	}
	if d := c.next(t); string(d.Msg.Body) != "o1" {
		t.Fatalf("bob got %q", d.Msg.Body)
	}
	for _, tc := range []struct {
		s    *Session
		what string
		err  error
	}{
		{bob, "bob sends to orders", bob.Send(ctx, "", &Message{Dest: q, Body: []byte("x")})},
		{alice, "alice reads orders", func() error { _, err := alice.Subscribe(SubSpec{Dest: q}, make(chanConsumer, 1)); return err }()},
		{anon, "anonymous sends to a queue", anon.Send(ctx, "", &Message{Dest: Destination{Kind: Queue, Name: "q1"}})},
		{alice, "alice sends to another queue", alice.Send(ctx, "", &Message{Dest: Destination{Kind: Queue, Name: "payroll"}})},
		{bob, "bob subscribes to every topic", func() error {
			_, err := bob.Subscribe(SubSpec{Dest: Destination{Kind: Topic, Name: ">"}}, make(chanConsumer, 1))
			return err
		}()},
	} {
		if !errors.Is(tc.err, ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", tc.what, tc.err)
		}
	}
	// Everyone may read sensors' topics, wildcards within them included.
	if _, err := anon.Subscribe(SubSpec{Dest: Destination{Kind: Topic, Name: "sensors.*"}}, make(chanConsumer, 1)); err != nil {
		t.Errorf("an anonymous subscription to sensors.*: %v", err)
	}
	// A temporary queue needs no grant; only its owner consumes it.
	tmp := bob.CreateTemp(TempQueue)
	if err := alice.Send(ctx, "", &Message{Dest: tmp, Body: []byte("reply")}); err != nil {
		t.Errorf("a reply to a temporary queue: %v", err)
	}
	r := auth.Refusals()
	if r["read"] != 2 || r["write"] != 3 || r["admin"] != 1 {
		t.Errorf("refusals %v, want read 2, write 3, admin 1", r)
	}
	// A new configuration applies to the next send.
	cfg := authConfig(t)
	cfg.Entries[1].Write = append(cfg.Entries[1].Write, "consumers")
	auth.Update(cfg)
	if err := bob.Send(ctx, "", &Message{Dest: q, Body: []byte("now")}); err != nil {
		t.Errorf("bob's send once consumers may write: %v", err)
	}
}
