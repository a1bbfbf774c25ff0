package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/config"
	"github.com/hamq/hamq/core"
)

// newAuth makes the process's user store and authorization map, which
// every broker it runs and the admin API share.
func newAuth(cfg config.Auth, log *slog.Logger) (*core.Auth, error) {
	ac, err := cfg.AuthConfig()
	if err != nil {
		return nil, err
	}
	a := core.NewAuth(ac)
	describeAuth(a, log)
	return a, nil
}

func describeAuth(a *core.Auth, log *slog.Logger) {
	c := a.Config()
	if !a.Enabled() {
		log.Info("authentication is off: anyone may connect and do anything, and the admin API and console are open (auth in the configuration)", "component", "auth")
		return
	}
	admins := 0
	for _, u := range c.Users {
		if a.IsAdmin(u.Name) {
			admins++
		}
	}
	log.Info("authentication is on", "component", "auth", "users", len(c.Users), "administrators", admins,
		"anonymous", c.Anonymous, "authorizationEntries", len(c.Entries))
	if admins == 0 {
		log.Warn("no user is in an admin group (auth.adminGroups): the admin API and the console refuse everyone", "component", "auth")
	}
}

// watchUsers reads the users file again whenever it changes, until ctx
// ends; a file with a mistake is reported and the users before it kept.
func watchUsers(ctx context.Context, cfg config.Auth, a *core.Auth, log *slog.Logger) {
	if cfg.UsersFile == "" {
		return
	}
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(cfg.UsersFile)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	mod, size := stamp()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, s := stamp()
		if m.Equal(mod) && s == size {
			continue
		}
		mod, size = m, s
		ac, err := cfg.AuthConfig()
		if err != nil {
			log.Error("the users file has a mistake; the users before it stay", "component", "auth", "err", err)
			continue
		}
		a.Update(ac)
		log.Info("users file read again", "component", "auth", "file", cfg.UsersFile, "users", len(ac.Users))
		describeAuth(a, log)
	}
}
