package stomp

import (
	"bufio"
	"strings"

	"github.com/go-stomp/stomp/v3/frame"
)

var (
	// STOMP 1.0 has no escaping. A line break in a header of a message
	// from a 1.1 or 1.2 producer would end the line there and let the
	// rest pass for a header of the producer's choosing, so it goes as
	// 1.1 writes it: the 1.0 consumer sees a backslash and an n.
	//
	// No version can escape a NUL, which ends the frame: in a header (a
	// property from an MQTT or AMQP producer, an ERROR quoting what a
	// client sent) it goes as U+FFFD, the replacement character.
	escape10 = strings.NewReplacer("\n", `\n`, "\x00", "\ufffd")
	escape11 = strings.NewReplacer(`\`, `\\`, "\n", `\n`, ":", `\c`, "\x00", "\ufffd")
	escape12 = strings.NewReplacer(`\`, `\\`, "\r", `\r`, "\n", `\n`, ":", `\c`, "\x00", "\ufffd")
)

// writeFrame encodes f for the negotiated version into w without flushing:
// go-stomp's frame.Writer flushes every frame and escapes as 1.2 even for
// 1.0 clients, which would garble message ids holding colons.
func writeFrame(w *bufio.Writer, version string, f *frame.Frame) error {
	w.WriteString(f.Command)
	w.WriteByte('\n')
	var esc *strings.Replacer
	switch {
	case f.Command == frame.CONNECTED:
	case version == "1.0":
		esc = escape10
	case version == "1.1":
		esc = escape11
	default:
		esc = escape12
	}
	for i := range f.Header.Len() {
		k, v := f.Header.GetAt(i)
		if esc != nil {
			esc.WriteString(w, k)
			w.WriteByte(':')
			esc.WriteString(w, v)
		} else {
			w.WriteString(k)
			w.WriteByte(':')
			w.WriteString(v)
		}
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
	w.Write(f.Body)
	return w.WriteByte(0)
}
