package selector

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse and every compiled selector to
// Matches over typed and string-typed messages: neither may panic, every
// error must say where, and String must give the source back.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a = 1", "x LIKE 'a%b' ESCAPE '!'", "NOT (a IN ('x','y') OR b BETWEEN 1 AND 2)",
		"a IS NOT NULL", "-a*2/0 >= 1.5e3", "b % 0 = 1", "c = TRUE AND x <> 'abc'", "0x1F + 010 - 7L < .5",
	} {
		f.Add(s)
	}
	gets := []func(string) (any, bool){
		props(map[string]any{"a": int64(1), "b": "2", "c": true, "x": "abc", "y": 2.5}),
		props(map[string]any{"a": "1", "b": "-9223372036854775808", "c": "true", "x": "", "y": "NaN"}),
		props(nil),
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "selector: ") || !strings.Contains(err.Error(), " at offset ") {
				t.Fatalf("Parse(%q) error %q does not say where", src, err)
			}
			return
		}
		if s.String() != src {
			t.Fatalf("String() = %q, want %q", s.String(), src)
		}
		for _, get := range gets {
			s.Matches(get)
		}
	})
}
