package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// creds are the user name and password a command logs in with: --user
// and --password, else the environment's HAMQ_USER and HAMQ_PASSWORD
// (which keep a password off command lines that ps shows).
type creds struct{ user, password string }

// credFlags adds --user and --password to fs; call fill after parsing.
func credFlags(fs *flag.FlagSet) *creds {
	c := &creds{}
	fs.StringVar(&c.user, "user", "", "user name to log in with (default $HAMQ_USER)")
	fs.StringVar(&c.password, "password", "", "password (default $HAMQ_PASSWORD)")
	return c
}

// fill takes what the flags left unset from the environment.
func (c *creds) fill() creds {
	if c.user == "" {
		c.user = os.Getenv("HAMQ_USER")
	}
	if c.password == "" {
		c.password = os.Getenv("HAMQ_PASSWORD")
	}
	return *c
}

// envCreds are the environment's, for commands without the flags.
func envCreds() creds { return (&creds{}).fill() }

// stompHeaders are the CONNECT headers that log in.
func (c creds) stompHeaders() []string {
	if c.user == "" {
		return nil
	}
	return []string{frame.Login, c.user, frame.Passcode, c.password}
}

// authorize adds the admin API's login (HTTP basic) to a request.
func (c creds) authorize(r *http.Request) {
	if c.user != "" {
		r.SetBasicAuth(c.user, c.password)
	}
}

// refusal is a broker's answer that trying again cannot change: a wrong
// password, a user not allowed. A command stops at once with the
// broker's words rather than retrying.
type refusal struct{ msg string }

func (r *refusal) Error() string { return "the broker refused: " + r.msg }

// stompRefusal is the error of a STOMP ERROR frame answering CONNECT.
func stompRefusal(f *frame.Frame) error {
	msg := f.Header.Get(frame.Message)
	if msg == "" {
		msg = strings.TrimSpace(string(f.Body))
	}
	if authFailure(msg) {
		return &refusal{msg}
	}
	return fmt.Errorf("the broker answered CONNECT with ERROR: %s", msg)
}

// authFailure reports whether a broker's message says a login failed:
// hamq's words (core.ErrUnauthorized), and ActiveMQ's.
func authFailure(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "authentication failed") || strings.Contains(m, "not authorized") ||
		strings.Contains(m, "user name or password is invalid")
}

// refused reports whether err is an answer that retrying cannot change.
func refused(err error) bool {
	var r *refusal
	var se stomp.Error
	return errors.As(err, &r) ||
		(errors.As(err, &se) && se.Frame != nil && authFailure(se.Message)) ||
		errors.Is(err, paho.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, paho.ErrorRefusedNotAuthorised)
}

// secondsFlag is a duration flag that also takes a plain number of
// seconds: --timeout 3 is three seconds, as --timeout 3s.
type secondsFlag time.Duration

func (s *secondsFlag) String() string { return time.Duration(*s).String() }

func (s *secondsFlag) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return fmt.Errorf("%q is negative", v)
		}
		*s = secondsFlag(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration: want seconds (3, 0.5) or a duration (3s, 500ms, 1m)", v)
	}
	*s = secondsFlag(d)
	return nil
}

func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var((*secondsFlag)(&d), name, usage)
	return &d
}
