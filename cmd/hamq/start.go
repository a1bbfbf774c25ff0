package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
	"github.com/hamq/hamq/cmd/hamq/internal/config"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/protocols/mqtt"
	"github.com/hamq/hamq/protocols/stomp"
	"github.com/hamq/hamq/protocols/ws"
)

type exitCode int

func (e exitCode) Error() string { return "exit " + strconv.Itoa(int(e)) }

func asExit(err error, ec *exitCode) bool { return errors.As(err, ec) }

// flagSet makes a subcommand's flags with a usage line.
func flagSet(name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("hamq "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: hamq %s %s\n\n%s\n\nFlags:\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

func cmdStart(args []string) error {
	fs := flagSet("start", "[flags]", "Runs the broker in the foreground until SIGTERM or SIGINT, which drain and\nstop it cleanly. Flags override the configuration file; an address of off\nkeeps that listener closed.")
	cfgPath := fs.String("config", "", "configuration file (default: conf/hamq.yaml when it exists, else built-in defaults)")
	data := fs.String("data", "", "data directory (overrides broker.dataDir)")
	listeners := map[string]*string{}
	for _, l := range []struct{ name, what string }{
		{"stomp", "STOMP listener"}, {"mqtt", "MQTT listener"}, {"amqp", "AMQP 1.0 listener (not available yet)"},
		{"ws", "WebSocket listener (STOMP and MQTT)"}, {"http", "admin HTTP API"},
	} {
		listeners[l.name] = fs.String(l.name, "", l.what+" address host:port, or off")
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	path := *cfgPath
	if path == "" {
		if _, err := os.Stat("conf/hamq.yaml"); err == nil {
			path = "conf/hamq.yaml"
		}
	}
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return err
		}
	}
	if *data != "" {
		cfg.Broker.DataDir = *data
	}
	for name, target := range map[string]*config.Address{
		"stomp": &cfg.STOMP.Address, "mqtt": &cfg.MQTT.Address, "amqp": &cfg.AMQP.Address, "ws": &cfg.WS.Address, "http": &cfg.HTTP.Address,
	} {
		if v := *listeners[name]; v != "" {
			a, err := config.ParseAddress(v)
			if err != nil {
				return fmt.Errorf("--%s: %w", name, err)
			}
			*target = a
		}
	}
	return run(cfg)
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return exitCode(0)
	}
	return exitCode(2)
}

func newLogger(cfg config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// run is the broker's life: lock the data directory, open the store and the
// core, open the listeners, wait for a signal, then drain and close in order.
func run(cfg config.Config) error {
	log := newLogger(cfg.Log)
	dir := cfg.Broker.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{}, log)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := core.NewBroker(cfg.Core(), st, log)
	if err != nil {
		return err
	}
	defer b.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The front-ends exist even when their own port is off: the WebSocket
	// port carries STOMP and MQTT too.
	stompSrv := stomp.NewServer(b, cfg.STOMPOptions(), log)
	mqttSrv, err := mqtt.NewServer(b, cfg.MQTTOptions(), log)
	if err != nil {
		return err
	}
	wsSrv := ws.NewServer(stompSrv, mqttSrv, cfg.WSOptions(), log)
	listeners := []struct {
		name  string
		addr  config.Address
		serve func(net.Listener) error
	}{
		{"stomp", cfg.STOMP.Address, stompSrv.Serve},
		{"mqtt", cfg.MQTT.Address, mqttSrv.Serve},
		{"ws", cfg.WS.Address, wsSrv.Serve},
	}
	errs := make(chan error, len(listeners)+1) // one per Serve, read or not
	for _, l := range listeners {
		if l.addr.Off() {
			continue
		}
		ln, err := net.Listen("tcp", string(l.addr))
		if err != nil {
			return fmt.Errorf("%s listener: %w", l.name, err)
		}
		go func() { errs <- l.serve(ln) }()
		log.Info("listening", "component", l.name, "address", ln.Addr().String())
	}
	if !cfg.AMQP.Address.Off() {
		log.Info("front-end not available in this version; listener stays closed", "component", "amqp", "address", string(cfg.AMQP.Address))
	}
	var httpSrv *http.Server
	if !cfg.HTTP.Address.Off() {
		ln, err := net.Listen("tcp", string(cfg.HTTP.Address))
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		httpSrv = &http.Server{Handler: admin.New(b, admin.Info{Name: cfg.Broker.Name, Version: version, Role: "standalone", End: st.End}),
			ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- httpSrv.Serve(ln) }()
		log.Info("listening", "component", "admin", "address", ln.Addr().String())
	}
	log.Info("hamq started", "version", version, "name", cfg.Broker.Name, "data", dir, "pid", os.Getpid())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case runErr = <-errs:
		log.Error("listener failed", "err", runErr)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	wsSrv.Shutdown(shutdown)
	if err := stompSrv.Shutdown(shutdown); err != nil {
		log.Warn("stomp shutdown", "err", err)
	}
	if err := mqttSrv.Shutdown(shutdown); err != nil {
		log.Warn("mqtt shutdown", "err", err)
	}
	if httpSrv != nil {
		httpSrv.Shutdown(shutdown)
	}
	log.Info("hamq stopped")
	return runErr
}
