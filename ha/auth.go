package ha

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Members prove to each other that they hold the cluster secret before
// either believes a word of the other: the master's HELLO carries its
// nonce; the node answers with its own nonce and a proof over both and
// the HELLO; the master checks it (a rogue "member" could otherwise feed
// a candidate a longer log) and proves itself in turn; only then does the
// node let the HELLO fence it. Both directions of the rest of the
// connection are then keyed from the secret and both nonces (link.key),
// so the authentication holds for every message, not only the first.
//
// Without a secret the same exchange runs with an empty one: it keeps
// nothing out, which the node says at start.

const nonceLen = 32

// ErrAuth is a peer that does not prove it holds the cluster secret.
var ErrAuth = errors.New("ha: replication peer failed authentication (is cluster.secret the same on every node?)")

type hello struct {
	version uint64
	epoch   uint64
	id      string
	nonce   []byte
}

func (h hello) encode() []byte {
	b := binary.AppendUvarint(nil, h.version)
	b = binary.AppendUvarint(b, h.epoch)
	return appendBytes(appendBytes(b, []byte(h.id)), h.nonce)
}

func decodeHello(p []byte) (hello, error) {
	d := decoder{b: p}
	h := hello{version: d.uint()}
	if d.err == nil && h.version != protocolVersion {
		return h, fmt.Errorf("%w: replication protocol version %d, this node speaks %d", errProtocol, h.version, protocolVersion)
	}
	h.epoch, h.id, h.nonce = d.uint(), string(d.bytes()), d.bytes()
	if d.err == nil && len(h.nonce) != nonceLen {
		d.err = errProtocol
	}
	h.nonce = append([]byte(nil), h.nonce...) // the link reuses its buffer
	return h, d.err
}

func nonce() []byte {
	b := make([]byte, nonceLen)
	rand.Read(b)
	return b
}

// keyed is HMAC-SHA256 under the secret of a label and the parts, each
// length-prefixed so that no two inputs run together alike.
func keyed(secret []byte, label string, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(appendBytes(nil, []byte(label)))
	for _, p := range parts {
		h.Write(appendBytes(nil, p))
	}
	return h.Sum(nil)
}

// sessionMACs are the keyed MACs of each direction of one connection.
func sessionMACs(secret, nonceM, nonceN []byte) (toNode, toMaster hash.Hash) {
	return hmac.New(sha256.New, keyed(secret, "hamq replication master to node", nonceM, nonceN)),
		hmac.New(sha256.New, keyed(secret, "hamq replication node to master", nonceM, nonceN))
}

// authMaster is the master's side: it sends HELLO and returns once the
// node has proven the secret and the link is keyed.
func authMaster(l *link, secret []byte, epoch uint64, id string) error {
	h := hello{version: protocolVersion, epoch: epoch, id: id, nonce: nonce()}
	hp := h.encode()
	if err := l.write(msgHello, hp); err != nil {
		return err
	}
	if err := l.flush(); err != nil {
		return err
	}
	typ, p, err := l.read()
	if err != nil {
		return fmt.Errorf("reading the challenge: %w", err)
	}
	if typ != msgChallenge {
		return fmt.Errorf("%w: answer %d to HELLO", errProtocol, typ)
	}
	d := decoder{b: p}
	nonceN, got := d.bytes(), d.bytes()
	if d.err != nil || len(nonceN) != nonceLen {
		return fmt.Errorf("%w: challenge", errProtocol)
	}
	nonceN = append([]byte(nil), nonceN...)
	if !hmac.Equal(got, keyed(secret, "hamq replication node proof", h.nonce, nonceN, hp)) {
		return ErrAuth
	}
	if err := l.write(msgAuth, appendBytes(nil, keyed(secret, "hamq replication master proof", h.nonce, nonceN, hp))); err != nil {
		return err
	}
	toNode, toMaster := sessionMACs(secret, h.nonce, nonceN)
	l.key(toNode, toMaster)
	return nil
}

// authNode is a node's side: it reads HELLO, proves the secret, checks
// the master's proof and keys the link; only then may the HELLO count.
func authNode(l *link, secret []byte) (hello, error) {
	typ, p, err := l.read()
	if err != nil {
		return hello{}, err
	}
	if typ != msgHello {
		return hello{}, fmt.Errorf("%w: first message %d, not HELLO", errProtocol, typ)
	}
	hp := append([]byte(nil), p...)
	h, err := decodeHello(hp)
	if err != nil {
		return h, err
	}
	nonceN := nonce()
	if err := l.write(msgChallenge, appendBytes(appendBytes(nil, nonceN), keyed(secret, "hamq replication node proof", h.nonce, nonceN, hp))); err != nil {
		return h, err
	}
	if err := l.flush(); err != nil {
		return h, err
	}
	typ, p, err = l.read()
	if err != nil {
		return h, fmt.Errorf("reading the master's proof: %w", err)
	}
	d := decoder{b: p}
	got := d.bytes()
	if typ != msgAuth || d.err != nil || !hmac.Equal(got, keyed(secret, "hamq replication master proof", h.nonce, nonceN, hp)) {
		return h, ErrAuth
	}
	toNode, toMaster := sessionMACs(secret, h.nonce, nonceN)
	l.key(toMaster, toNode)
	return h, nil
}
