// Package stomp is hamq's STOMP 1.0, 1.1 and 1.2 front-end, with
// ActiveMQ's headers (persistent, activemq.subscriptionName,
// activemq.prefetchSize, selector, client-id) and destination names
// (/queue/..., /topic/..., /temp-queue/...). Its reader bounds every part
// of a frame (reader.go), its writer escapes per the negotiated version
// (writer.go), and each connection maps frames onto a core session
// (conn.go, handlers.go, mapping.go). The WebSocket listener hands it its
// STOMP connections as net.Conns.
//
// It imports core, never the store or ZooKeeper.
//
// # What hamq does where STOMP 1.2 leaves a choice or hamq deviates
//
//	section                      what hamq does
//	---------------------------  ------------------------------------------------------------------
//	CONNECT "host" (REQUIRED)    not required, as ActiveMQ: a CONNECT without it is served
//	Protocol negotiation         the highest common version; no accept-version means 1.0
//	Heart-beating                the server wishes 10 s both ways (Options.HeartBeat); CONNECTED
//	                             says the intervals agreed (as ActiveMQ), not that wish; a client
//	                             silent for twice the agreed interval plus 1 s gets an ERROR
//	Size limits ("MAY")          frame size (100 MiB, as ActiveMQ), headers per frame (1,000),
//	                             header line (64 KiB): beyond one, ERROR and close
//	Repeated header entries      only the first is used, as 1.2 says
//	Value encoding               undefined escapes are fatal (ERROR), as 1.2 says; CONNECT and
//	                             CONNECTED are not escaped. 1.0 has no escaping: a line break in a
//	                             header of a message from a 1.1 or 1.2 producer reaches a 1.0
//	                             consumer as a backslash and an n, where it would otherwise end the
//	                             line and let the rest pass for another header. A NUL, which no
//	                             version escapes, is fatal in a header a client sends (ERROR), and
//	                             goes as U+FFFD in one hamq writes (a property from MQTT or AMQP)
//	Commands                     one holding a control character is fatal (ERROR); an unknown one too
//	SUBSCRIBE "id" (REQUIRED)    required from 1.1 on; a 1.0 subscription is named by its
//	                             destination
//	ACK, NACK of an unknown id   an ERROR, and the connection closes (the specification is silent)
//	NACK                         the message is redelivered with back-off, then dead-lettered
//	                             (DLQ.<queue>) after the configured number of deliveries
//	SEND to a new destination    the destination is created, as ActiveMQ
//	DISCONNECT receipt           sent, then the connection closes; a client that half-closes its
//	                             side right after DISCONNECT may find the RECEIPT dropped
//	ERROR                        carries "message", text/plain body, and "receipt-id" when the
//	                             frame that failed asked for a receipt; the connection then closes
//	MESSAGE "ack" header         sent in 1.2 for client and client-individual subscriptions
//	Transactions                 sends and acks inside one take effect at COMMIT, durably
package stomp
