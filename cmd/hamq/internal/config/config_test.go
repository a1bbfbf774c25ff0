package config

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestDefaultFileMatchesCode(t *testing.T) {
	c, err := Load("../../../../conf/hamq.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("conf/hamq.yaml and Default() differ:\nfile %+v\ncode %+v", c, Default())
	}
}

func TestLoadOverrides(t *testing.T) {
	c := loadText(t, "stomp:\n  maxFrameSize: 1mb\n  address: off\npolicy:\n  maxRedeliveries: -1\n  redeliveryDelay: 250ms\n")
	if c.STOMP.MaxFrameSize != 1<<20 || !c.STOMP.Address.Off() || c.Policy.MaxRedeliveries != -1 || c.Core().RedeliveryDelay.Milliseconds() != 250 {
		t.Fatalf("%+v", c)
	}
	if c.HTTP.Address != Default().HTTP.Address {
		t.Fatalf("unset key lost its default: %q", c.HTTP.Address)
	}
}

func loadText(t *testing.T, text string) Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hamq.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"stomp:\n  maxConections: 5\n", "hamq.yaml:2: stomp.maxConections: unknown key (did you mean maxConnections?)"},
		{"stomp:\n  maxFrameSize: 12xyz\n", `hamq.yaml:2: stomp.maxFrameSize: "12xyz" is not a size (want e.g. 100MiB, 64mb or 4096)`},
		{"broker:\n  name: x\npolicy:\n  sendTimeout: soon\n", `hamq.yaml:4: policy.sendTimeout: "soon" is not a duration (want e.g. 500ms, 10s or 1m)`},
		{"http:\n  address: localhost\n", `hamq.yaml:2: http.address: "localhost" is not an address (want host:port, e.g. 127.0.0.1:61613, or off)`},
		{"stomp:\n  maxConnections: lots\n", `hamq.yaml:2: stomp.maxConnections: "lots" is not a whole number`},
		{"stomp:\n  maxConnections: 0\n", "hamq.yaml:2: stomp.maxConnections: 0 is below the minimum of 1"},
		{"policy:\n  memoryLimit: 10\n", "hamq.yaml:2: policy.memoryLimit: 10 is below the minimum of 1KiB"},
		{"policy:\n  expiredToDLQ: maybe\n", `hamq.yaml:2: policy.expiredToDLQ: "maybe" is not true or false`},
		{"log:\n  level: loud\n", `hamq.yaml:2: log.level: "loud" is not one of debug, info, warn, error`},
		{"stomps:\n  address: off\n", "hamq.yaml:1: stomps: unknown key (did you mean stomp?)"},
		{"stomp: 5\n", `hamq.yaml:1: stomp: want a section of keys, found "5"`},
		{"stomp:\n  address: [a, b]\n", "hamq.yaml:2: stomp.address: want a single value, found a list"},
		{"auth:\n  users:\n    - alice:secret\n    - bob\n", `hamq.yaml:4: auth.users: want entries of the form name:password, found "bob"`},
		{"amqp:\n  maxFrameSize: 8GiB\n", "hamq.yaml:2: amqp.maxFrameSize: 8GiB is above the maximum of 4294967295"},
		{"amqp:\n  bareAddress: exchange\n", `hamq.yaml:2: amqp.bareAddress: "exchange" is not one of queue, topic`},
		{"stomp:\n  address: \"x\n", "hamq.yaml:2: found unexpected end of stream"},
		{"stomp:\n\taddress: x\n", "hamq.yaml:2: found character that cannot start any token"},
		{"auth:\n  users:\n    - name: alice\n", "hamq.yaml:3: auth.users.password: must not be empty (a bcrypt hash from hamq passwd)"},
		{"auth:\n  users:\n    - name: alice\n      password: $2a$10$short\n", "hamq.yaml:4: auth.users.password: looks like a bcrypt hash but is not a valid one"},
		{"auth:\n  users:\n    - name: alice\n      pasword: x\n", "hamq.yaml:4: auth.users.pasword: unknown key (did you mean password?)"},
		{"auth:\n  authorization:\n    - read: admins\n", "hamq.yaml:3: auth.authorization: an entry names a queue or a topic pattern"},
		{"auth:\n  authorization:\n    - queue: a\n      topic: b\n", "hamq.yaml:4: auth.authorization.topic: an entry names a queue or a topic pattern, not both"},
		{"auth:\n  authorization:\n    - queue: \"orders.>.x\"\n", `hamq.yaml:3: auth.authorization.queue: "orders.>.x" is not a destination pattern (dot-separated names, * for one level, > last for the rest)`},
		{"auth:\n  authorization: admins\n", `hamq.yaml:2: auth.authorization: want a list, found "admins"`},
		{"auth:\n  usersFile: /nonexistent/users.yaml\n", "hamq.yaml:2: auth.usersFile: cannot read it: open /nonexistent/users.yaml: no such file or directory"},
	} {
		p := filepath.Join(t.TempDir(), "hamq.yaml")
		os.WriteFile(p, []byte(tc.text), 0o600)
		_, err := Load(p)
		if err == nil {
			t.Errorf("%q loaded without error", tc.text)
			continue
		}
		if got := err.Error(); got != filepath.Dir(p)+"/"+tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.text, got, filepath.Dir(p)+"/"+tc.want)
		}
	}
}

// The tls section is checked as a whole: both files, readable, a key that
// is the certificate's; each mistake names its line and key.
func TestTLSSection(t *testing.T) {
	dir := t.TempDir()
	// Throwaway files made with openssl req -x509 and openssl genpkey.
	cert, key, otherKey := abs(t, "testdata/cert.pem"), abs(t, "testdata/key.pem"), abs(t, "testdata/other-key.pem")
	for _, tc := range []struct{ text, want string }{
		{"tls:\n  certFile: " + cert + "\n", "hamq.yaml:2: tls.keyFile: must be given with certFile"},
		{"tls:\n  keyFile: " + key + "\n", "hamq.yaml:2: tls.certFile: must be given with keyFile"},
		{"tls:\n  certFile: " + dir + "/none.pem\n", "hamq.yaml:2: tls.certFile: cannot read it: open " + dir + "/none.pem: no such file or directory"},
		{"tls:\n  certFile: " + key + "\n  keyFile: " + key + "\n", "hamq.yaml:2: tls.certFile: no PEM certificate in it"},
		{"tls:\n  certFile: " + cert + "\n  keyFile: " + key + "\n  clientCAFile: " + key + "\n", "hamq.yaml:4: tls.clientCAFile: no PEM certificate in it"},
		{"tls:\n  clientCAFile: " + cert + "\n", "hamq.yaml:2: tls.clientCAFile: needs certFile and keyFile"},
		{"tls:\n  certFile: " + cert + "\n  keyFile: " + otherKey + "\n", "hamq.yaml:3: tls.keyFile: not a key for certFile's certificate: tls: private key does not match public key"},
	} {
		p := filepath.Join(dir, "hamq.yaml")
		os.WriteFile(p, []byte(tc.text), 0o600)
		_, err := Load(p)
		if err == nil || err.Error() != dir+"/"+tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.text, err, dir+"/"+tc.want)
		}
	}
	p := filepath.Join(dir, "hamq.yaml")
	os.WriteFile(p, []byte("tls:\n  certFile: "+cert+"\n  keyFile: "+key+"\n"), 0o600)
	c, err := Load(p)
	if err != nil || !c.TLS.Enabled() {
		t.Fatalf("loaded %+v, %v", c.TLS, err)
	}
	if tc, err := c.TLS.Config(); err != nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 || tc.ClientAuth != tls.NoClientCert {
		t.Fatalf("TLS config %+v, %v", tc, err)
	}
	os.WriteFile(p, []byte("tls:\n  certFile: "+cert+"\n  keyFile: "+key+"\n  clientCAFile: "+cert+"\n"), 0o600)
	if c, err = Load(p); err != nil {
		t.Fatal(err)
	}
	if tc, err := c.TLS.Config(); err != nil || tc.ClientAuth != tls.RequireAndVerifyClientCert || tc.ClientCAs == nil {
		t.Fatalf("TLS config with client CAs %+v, %v", tc, err)
	}
	if Default().TLS.Enabled() {
		t.Fatal("TLS enabled by default")
	}
}

func abs(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The auth section: short and long user entries, groups as a list or
// ActiveMQ's comma-separated form, entries, and a users file.
func TestAuthSection(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	os.WriteFile(users, []byte("users:\n  - name: carol\n    password: pw\n    groups: consumers, producers\n"), 0o600)
	c := loadText(t, `auth:
  anonymous: false
  users:
    - alice:secret
    - name: admin
      password: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
      groups: [admins]
  usersFile: `+users+`
  authorization:
    - queue: "orders.>"
      read: consumers
      write: [producers, admins]
      admin: admins
    - topic: ">"
      read: "*"
`)
	ac, err := c.Auth.AuthConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ac.Anonymous || len(ac.Users) != 3 || ac.Users[0].Password != "secret" || ac.Users[2].Name != "carol" ||
		!reflect.DeepEqual(ac.Users[2].Groups, []string{"consumers", "producers"}) || !reflect.DeepEqual(ac.AdminGroups, []string{"admins"}) {
		t.Fatalf("users %+v", ac)
	}
	if len(ac.Entries) != 2 || ac.Entries[0].Pattern != "orders.>" || !reflect.DeepEqual(ac.Entries[0].Write, []string{"producers", "admins"}) ||
		ac.Entries[1].Pattern != ">" || ac.Entries[1].Read[0] != "*" {
		t.Fatalf("entries %+v", ac.Entries)
	}
	os.WriteFile(users, []byte("users:\n  - carol\n"), 0o600)
	if _, err := c.Auth.AuthConfig(); err == nil || err.Error() != users+`:2: users: want entries of the form name:password, found "carol"` {
		t.Fatalf("a bad users file: %v", err)
	}
}
