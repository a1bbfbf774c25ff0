package stomp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"
)

// limitError is a frame that breaks a limit or the grammar: the client gets
// an ERROR frame with its text, then the connection closes.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

func protocolErrorf(format string, args ...any) error {
	return &limitError{fmt.Sprintf(format, args...)}
}

// reader reads STOMP frames with limits on every part, unlike go-stomp's
// frame.Reader which allocates whatever a content-length asks for.
type reader struct {
	r             *bufio.Reader
	maxFrame      int64
	maxHeaders    int
	maxHeaderLine int
	version       string // escaping rules follow the negotiated version
}

func newReader(r io.Reader, opts Options) *reader {
	return &reader{r: bufio.NewReaderSize(r, 64<<10), maxFrame: opts.MaxFrameSize,
		maxHeaders: opts.MaxHeaders, maxHeaderLine: opts.MaxHeaderLine, version: "1.0"}
}

// line reads one line without its EOL, no longer than the limit.
func (r *reader) line(used *int64) (string, error) {
	var buf []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > r.maxHeaderLine+2 {
			return "", protocolErrorf("header line longer than %d bytes", r.maxHeaderLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		break
	}
	*used += int64(len(buf))
	if *used > r.maxFrame {
		return "", protocolErrorf("frame larger than the maximum frame size of %d bytes", r.maxFrame)
	}
	buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte{'\r'})
	return string(buf), nil
}

// read returns the next frame; heart-beat EOLs between frames are skipped.
func (r *reader) read() (*frame.Frame, error) {
	var used int64
	var command string
	for {
		c, err := r.line(&used)
		if err != nil {
			return nil, err
		}
		if c != "" {
			command = c
			break
		}
		used = 0
	}
	if i := strings.IndexFunc(command, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		// A command is a word; one ending in CR would not even read back
		// as itself (the CR before LF is the line's end).
		return nil, protocolErrorf("invalid command %q: control character at %d", command, i)
	}
	f := &frame.Frame{Command: command, Header: &frame.Header{}}
	unescape := r.version != "1.0" && command != frame.CONNECT && command != frame.STOMP
	for {
		l, err := r.line(&used)
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		if f.Header.Len() >= r.maxHeaders {
			return nil, protocolErrorf("more than %d headers", r.maxHeaders)
		}
		if strings.IndexByte(l, 0) >= 0 {
			// Nothing could pass it on: a NUL ends the frame.
			return nil, protocolErrorf("header line holds a NUL: %q", l)
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, protocolErrorf("header line without a colon: %q", l)
		}
		if unescape {
			if k, err = r.unescape(k); err == nil {
				v, err = r.unescape(v)
			}
			if err != nil {
				return nil, err
			}
		}
		if _, dup := f.Header.Contains(k); !dup { // the first of repeated headers wins
			f.Header.Add(k, v)
		}
	}
	body, err := r.body(f, used)
	if err != nil {
		return nil, err
	}
	f.Body = body
	return f, nil
}

func (r *reader) body(f *frame.Frame, used int64) ([]byte, error) {
	room := r.maxFrame - used
	if cl, ok := f.Header.Contains(frame.ContentLength); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || n < 0 {
			return nil, protocolErrorf("invalid content-length %q", cl)
		}
		if n > room {
			return nil, protocolErrorf("frame larger than the maximum frame size of %d bytes (content-length %d)", r.maxFrame, n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r.r, body); err != nil {
			return nil, err
		}
		if b, err := r.r.ReadByte(); err != nil {
			return nil, err
		} else if b != 0 {
			return nil, protocolErrorf("frame body does not end with NUL after content-length %d bytes: wrong content-length", n)
		}
		return body, nil
	}
	var body []byte
	for {
		chunk, err := r.r.ReadSlice(0)
		body = append(body, chunk...)
		if int64(len(body)) > room+1 {
			return nil, protocolErrorf("frame larger than the maximum frame size of %d bytes", r.maxFrame)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err
		}
		return body[:len(body)-1], nil
	}
}

// unescape decodes a header per STOMP 1.1 (no \r) or 1.2; an undefined
// escape is a fatal error, as 1.2 demands.
func (r *reader) unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", protocolErrorf("header ends in a lone backslash: %q", s)
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'c':
			b.WriteByte(':')
		case '\\':
			b.WriteByte('\\')
		case 'r':
			if r.version == "1.1" {
				return "", protocolErrorf(`undefined escape \r in STOMP 1.1 header %q`, s)
			}
			b.WriteByte('\r')
		default:
			return "", protocolErrorf(`undefined escape \%c in header %q`, s[i], s)
		}
	}
	return b.String(), nil
}
