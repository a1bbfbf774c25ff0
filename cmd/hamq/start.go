package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hamq/hamq/cmd/hamq/internal/admin"
	"github.com/hamq/hamq/cmd/hamq/internal/config"
	"github.com/hamq/hamq/cmd/hamq/internal/gcpace"
	"github.com/hamq/hamq/core"
	"github.com/hamq/hamq/core/store"
	"github.com/hamq/hamq/ha"
	"github.com/hamq/hamq/protocols/amqp"
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
		{"stomp", "STOMP listener"}, {"mqtt", "MQTT listener"}, {"amqp", "AMQP 1.0 listener"},
		{"ws", "WebSocket listener (STOMP and MQTT)"}, {"http", "admin HTTP API"},
	} {
		listeners[l.name] = fs.String(l.name, "", l.what+" address host:port, or off")
	}
	brokerName := fs.String("broker-name", "", "broker name, the same on every node of a cluster (overrides broker.name)")
	replicas := fs.Int("replicas", 0, "cluster size; sends are confirmed by replicas/2+1 nodes (overrides cluster.replicas)")
	bind := fs.String("bind", "", "replication listener host:port (overrides cluster.bind)")
	hostname := fs.String("hostname", "", "host other nodes reach this one by (overrides cluster.hostname)")
	zkAddr := fs.String("zk", "", "ZooKeeper host:port list; joins a cluster (overrides cluster.zkAddress)")
	zkPath := fs.String("zk-path", "", "ZooKeeper path of the cluster (overrides cluster.zkPath)")
	zkTimeout := fs.Duration("zk-session-timeout", 0, "ZooKeeper session timeout (overrides cluster.zkSessionTimeout)")
	syncPolicy := fs.String("sync", "", "quorum_mem or quorum_disk (overrides cluster.sync)")
	secret := fs.String("cluster-secret", "", "secret the cluster's nodes share to authenticate replication (overrides cluster.secret and $HAMQ_CLUSTER_SECRET)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["replicas"] && *replicas < 1 {
		return fmt.Errorf("--replicas: %d: a cluster has at least 1 node (3 or 5 tolerate 1 or 2 failures)", *replicas)
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
	if v := os.Getenv("HAMQ_CLUSTER_SECRET"); v != "" {
		cfg.Cluster.Secret = v
	}
	if *secret != "" {
		cfg.Cluster.Secret = *secret
	}
	if err := applyClusterFlags(&cfg, *brokerName, *replicas, *bind, *hostname, *zkAddr, *zkPath, *zkTimeout, *syncPolicy); err != nil {
		return err
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
	return run(cfg, path)
}

func applyClusterFlags(cfg *config.Config, name string, replicas int, bind, hostname, zk, zkPath string, zkTimeout time.Duration, sync string) error {
	c := &cfg.Cluster
	for _, f := range []struct {
		v      string
		target *string
	}{{name, &cfg.Broker.Name}, {hostname, &c.Hostname}, {zk, &c.ZKAddress}, {zkPath, &c.ZKPath}, {sync, &c.Sync}} {
		if f.v != "" {
			*f.target = f.v
		}
	}
	if c.Sync != ha.SyncQuorumMem && c.Sync != ha.SyncQuorumDisk {
		return fmt.Errorf("--sync: %q is not quorum_mem or quorum_disk", c.Sync)
	}
	if replicas > 0 {
		c.Replicas = replicas
	}
	if zkTimeout < 0 || (zkTimeout > 0 && zkTimeout < time.Second) {
		return fmt.Errorf("--zk-session-timeout: %v is below 1s", zkTimeout)
	} else if zkTimeout > 0 {
		c.ZKSessionTimeout = config.Duration(zkTimeout)
	}
	if bind != "" {
		a, err := config.ParseAddress(bind)
		if err != nil || a.Off() {
			return fmt.Errorf("--bind: %q is not host:port", bind)
		}
		c.Bind = a
	}
	return nil
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

// gcPercent is the broker's GOGC while busy unless the environment sets
// one: its heap is mostly messages waiting, and Go's default lets the heap
// grow to twice them before collecting; 50 keeps RSS near 1.5 times, for
// about 1% more CPU. While idle, gcpace lowers it.
const gcPercent = 50

// run is the broker's life: lock the data directory, then either serve
// standalone on the local store or join a cluster and serve while master;
// wait for a signal, then drain and close in order. cfgPath is the file
// cfg came from ("" for the built-in defaults).
func run(cfg config.Config, cfgPath string) error {
	if os.Getenv("GOGC") == "" {
		paceCtx, stopPacing := context.WithCancel(context.Background())
		paced := make(chan struct{})
		go func() {
			defer close(paced)
			gcpace.Run(paceCtx, gcPercent)
		}()
		defer func() {
			stopPacing()
			<-paced
		}()
	}
	log := newLogger(cfg.Log)
	if cfgPath != "" {
		abs, _ := filepath.Abs(cfgPath)
		log.Info("configuration loaded", "file", abs)
	} else {
		log.Info("configuration: the built-in defaults (no --config, and no conf/hamq.yaml in the current directory)")
	}
	auth, err := newAuth(cfg.Auth, log)
	if err != nil {
		return err
	}
	dir := cfg.Broker.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fe := &frontEnds{cfg: cfg, log: log, errs: make(chan error, 1), auth: auth, conns: newConnTracker()}
	storeDir := filepath.Join(dir, "store")
	info := admin.Info{Name: cfg.Broker.Name, Version: version, Auth: auth, Conns: fe.conns, Log: log,
		Replicas: cfg.Cluster.Replicas, StoreBytes: dirSize(storeDir)}
	nodeDone := make(chan error, 1)
	runCtx, cancelRun := context.WithCancel(context.Background())
	defer func() {
		cancelRun()
		<-nodeDone
	}()
	watchCtx, stopWatching := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchUsers(watchCtx, cfg.Auth, auth, log)
	}()
	defer func() {
		stopWatching()
		<-watched
	}()
	if cfg.Cluster.ZKAddress == "" {
		sa, err := openStandalone(storeDir, fe, log)
		if err != nil {
			nodeDone <- err
			return err
		}
		info.End, info.Health = sa.end, sa.health
		go func() { nodeDone <- sa.run(runCtx) }()
	} else {
		node, err := ha.NewNode(cfg.HA(), storeDir, store.Options{}, fe, log)
		if err != nil {
			nodeDone <- err
			return err
		}
		info.End = func() store.Position { return node.Status().End }
		info.Health = func() string { return node.Status().Health }
		info.Cluster = node.Status
		go func() { nodeDone <- node.Run(runCtx) }()
	}
	var httpSrv *http.Server
	if !cfg.HTTP.Address.Off() {
		ln, err := net.Listen("tcp", string(cfg.HTTP.Address))
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		httpSrv = &http.Server{Handler: admin.New(fe.broker, info), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				fe.fail(err)
			}
		}()
		log.Info("listening", "component", "admin", "address", ln.Addr().String())
	}
	log.Info("hamq started", "version", version, "name", cfg.Broker.Name, "data", dir, "pid", os.Getpid())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case runErr = <-fe.errs:
		log.Error("listener failed", "err", runErr)
	case runErr = <-nodeDone:
		nodeDone <- runErr // for the deferred wait
		log.Error("the broker failed", "err", runErr)
	}
	if httpSrv != nil {
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		httpSrv.Shutdown(shutdown)
	}
	return runErr
}

// standalone is a broker on its local store alone. A failed write (a full
// disk, an I/O error) leaves the store refusing writes and the core's
// memory ahead of it, so the client listeners close, the store is
// reopened once its disk has room again, and the core starts afresh from
// what the store holds: no client is told a send or an ack is done that
// was not stored, and nothing is counted that was not.
type standalone struct {
	dir string
	svc ha.Services
	log *slog.Logger

	mu  sync.Mutex
	st  *store.Store
	err error // why the store is closed
}

func openStandalone(dir string, svc ha.Services, log *slog.Logger) (*standalone, error) {
	st, err := store.Open(dir, store.Options{}, log)
	if err != nil {
		return nil, err
	}
	return &standalone{dir: dir, svc: svc, log: log, st: st}, nil
}

func (s *standalone) run(ctx context.Context) error {
	st := s.current()
	for {
		stop, err := s.svc.Start(st)
		if err != nil {
			st.Close()
			return err
		}
		select {
		case <-ctx.Done():
			stop("broker shutting down")
			return st.Close()
		case <-st.Failed():
		}
		s.log.Error("the store failed: client listeners closed until it can be reopened", "err", st.Err())
		stop(fmt.Sprintf("the store failed: %v", st.Err()))
		st.Close()
		s.set(nil, st.Err())
		for tries := 0; ; tries++ {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if st, err = store.Reopen(s.dir, store.Options{}, s.log); err == nil {
				break
			}
			s.set(nil, err)
			if tries%60 == 0 {
				s.log.Error("cannot reopen the store; retrying every second", "err", err)
			}
		}
		s.set(st, nil)
		s.log.Info("the store is open again: serving")
	}
}

func (s *standalone) set(st *store.Store, err error) {
	s.mu.Lock()
	s.st, s.err = st, err
	s.mu.Unlock()
}

func (s *standalone) current() *store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *standalone) end() store.Position {
	if st := s.current(); st != nil {
		return st.End()
	}
	return store.Position{}
}

func (s *standalone) health() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "store unavailable: " + s.err.Error()
	}
	if err := s.st.Err(); err != nil {
		return "store failed: " + err.Error()
	}
	return "ok"
}

// frontEnds is what a serving node runs: the destination core on the store
// and the client listeners. A standalone broker starts them once; a
// cluster node on each promotion (ha.Services), and stops them when it
// steps down, so that a slave's client ports stay closed.
type frontEnds struct {
	cfg  config.Config
	log  *slog.Logger
	errs chan error // the first listener failure ends the process
	// auth is the user store and authorization map of every term's
	// core; conns tracks the client sockets for the admin API.
	auth  *core.Auth
	conns *connTracker

	mu sync.Mutex
	b  *core.Broker
}

func (fe *frontEnds) broker() *core.Broker {
	fe.mu.Lock()
	defer fe.mu.Unlock()
	return fe.b
}

func (fe *frontEnds) fail(err error) {
	select {
	case fe.errs <- err:
	default:
	}
}

func (fe *frontEnds) Start(st *store.Store) (func(string), error) {
	cfg, log := fe.cfg, fe.log
	coreCfg := cfg.Core()
	coreCfg.Auth = fe.auth
	b, err := core.NewBroker(coreCfg, st, log)
	if err != nil {
		return nil, err
	}
	// The front-ends exist even when their own port is off: the WebSocket
	// port carries STOMP and MQTT too.
	stompSrv := stomp.NewServer(b, cfg.STOMPOptions(), log)
	mqttSrv, err := mqtt.NewServer(b, cfg.MQTTOptions(), log)
	if err != nil {
		b.Close()
		return nil, err
	}
	wsSrv := ws.NewServer(stompSrv, mqttSrv, cfg.WSOptions(), log)
	amqpSrv := amqp.NewServer(b, cfg.AMQPOptions(), log)
	var closed atomic.Bool
	stop := func(why string) {
		closed.Store(true)
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		wsSrv.Shutdown(shutdown)
		if err := stompSrv.Shutdown(shutdown, why); err != nil {
			log.Warn("stomp shutdown", "err", err)
		}
		if err := mqttSrv.Shutdown(shutdown); err != nil {
			log.Warn("mqtt shutdown", "err", err)
		}
		if err := amqpSrv.Shutdown(shutdown, why); err != nil {
			log.Warn("amqp shutdown", "err", err)
		}
		fe.mu.Lock()
		fe.b = nil
		fe.mu.Unlock()
		b.Close()
		log.Info("client listeners closed")
	}
	type listener struct {
		name  string
		addr  config.Address
		serve func(net.Listener) error
		tls   bool
	}
	listeners := []listener{
		{"stomp", cfg.STOMP.Address, stompSrv.Serve, false},
		{"mqtt", cfg.MQTT.Address, mqttSrv.Serve, false},
		{"ws", cfg.WS.Address, wsSrv.Serve, false},
		{"amqp", cfg.AMQP.Address, amqpSrv.Serve, false},
	}
	var tlsCfg *tls.Config
	if cfg.TLS.Enabled() {
		// Each protocol's own code runs over the TLS connection.
		if tlsCfg, err = cfg.TLS.Config(); err != nil {
			stop("broker shutting down")
			return nil, fmt.Errorf("tls: %w", err)
		}
		listeners = append(listeners,
			listener{"stomp+tls", cfg.STOMP.TLSAddress, stompSrv.Serve, true},
			listener{"mqtt+tls", cfg.MQTT.TLSAddress, mqttSrv.Serve, true},
			listener{"wss", cfg.WS.TLSAddress, wsSrv.Serve, true},
			listener{"amqps", cfg.AMQP.TLSAddress, amqpSrv.Serve, true})
	}
	for _, l := range listeners {
		if l.addr.Off() {
			continue
		}
		ln, err := net.Listen("tcp", string(l.addr))
		if err != nil {
			stop("broker shutting down")
			return nil, fmt.Errorf("%s listener: %w", l.name, err)
		}
		ln = fe.conns.listener(ln)
		if l.tls {
			ln = tls.NewListener(ln, tlsCfg)
		}
		go func() {
			if err := l.serve(ln); err != nil && !closed.Load() {
				fe.fail(fmt.Errorf("%s listener: %w", l.name, err))
			}
		}()
		log.Info("listening", "component", l.name, "address", ln.Addr().String())
	}
	fe.mu.Lock()
	fe.b = b
	fe.mu.Unlock()
	return stop, nil
}

// dirSize is the size of the files under dir, computed at most every few
// seconds (the admin API's overview polls it).
func dirSize(dir string) func() int64 {
	var mu sync.Mutex
	var size int64
	var at time.Time
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < 5*time.Second {
			return size
		}
		size, at = 0, time.Now()
		filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		return size
	}
}
