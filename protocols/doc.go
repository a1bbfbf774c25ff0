// Package protocols holds hamq's front-ends, one package per wire protocol
// (stomp, and mqtt, amqp and ws as they come). Each translates its protocol
// onto the core's Session API and nothing else: front-ends never touch the
// store or ZooKeeper, and every one is a server with Serve(net.Listener),
// Shutdown(ctx[, why]) and Close(), so the HA layer can open and close them
// alike.
package protocols
