package selector

import (
	"strings"
	"testing"
)

func props(m map[string]any) func(string) (any, bool) {
	return func(k string) (any, bool) { v, ok := m[k]; return v, ok }
}

func TestMatches(t *testing.T) {
	msg := map[string]any{
		"type": "order", "price": int64(150), "weight": 2.5, "qty": "12", "vip": true, "flag": "true",
		"name": "a_b%c", "city": "Zürich", "neg": int64(-3),
	}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"type = 'order'", true},
		{"type = 'Order'", false},
		{"type <> 'order'", false},
		{"price > 100", true},
		{"price > 100 AND type = 'order'", true},
		{"price > 200 OR type = 'order'", true},
		{"NOT price > 200", true},
		{"price BETWEEN 100 AND 150", true},
		{"price NOT BETWEEN 100 AND 150", false},
		{"weight < 3", true},
		{"weight * 2 = 5", true},
		{"price / 4 = 37", true},
		{"price / 0 = 1", false},
		{"price + 1 * 2 = 152", true},
		{"(price + 1) * 2 = 302", true},
		{"-neg = 3", true},
		{"qty > 10", true},
		{"qty = 12", true},
		{"qty > 'a'", false},
		{"type > 5", false},
		{"vip = TRUE", true},
		{"vip", true},
		{"flag = true", true},
		{"type IN ('order', 'invoice')", true},
		{"type NOT IN ('order', 'invoice')", false},
		{"type LIKE 'or%'", true},
		{"type LIKE 'o_der'", true},
		{"type LIKE 'x%'", false},
		{"type NOT LIKE 'x%'", true},
		{"name LIKE 'a\\_b\\%%' ESCAPE '\\'", true},
		{"name LIKE 'a\\_x%' ESCAPE '\\'", false},
		{"city LIKE 'Z_rich'", true},
		{"missing IS NULL", true},
		{"missing IS NOT NULL", false},
		{"type IS NOT NULL", true},
		{"missing = 1", false},
		{"NOT missing = 1", false},
		{"missing = 1 OR price > 1", true},
		{"missing = 1 AND price > 1", false},
		{"NOT (missing = 1 AND price < 1)", true},
		{"type = 'order' and price > 100 or false", true},
		{"0x10 = 16", true},
		{"1.5e1 = 15", true},
		{"10L = 10", true},
		{"'it''s' = 'it''s'", true},
	} {
		s, err := Parse(tc.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sel, err)
			continue
		}
		if got := s.Matches(props(msg)); got != tc.want {
			t.Errorf("%q = %v, want %v", tc.sel, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ sel, want string }{
		{"price >", "unexpected end of selector at offset 7"},
		{"price > > 3", `unexpected ">" at offset 8`},
		{"type = 'open", "unterminated string at offset 7"},
		{"a = 1 b", `unexpected "b" at offset 6`},
		{"a IN (1, 2)", "IN takes a list of quoted strings"},
		{"a LIKE 5", "LIKE takes a quoted pattern"},
		{"a BETWEEN 1 OR 2", "expected AND in BETWEEN"},
		{"a IS 5", "expected NULL after IS"},
		{"a # 1", "unexpected character '#' at offset 2"},
		{"(a = 1", "expected )"},
		{strings.Repeat("(", 200) + "a = 1" + strings.Repeat(")", 200), "nested deeper than 100"},
		{strings.Repeat("a", 5000), "longer than 4096 bytes"},
		{"a = 99999999999999999999", "not a 64-bit integer"},
	} {
		_, err := Parse(tc.sel)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.40q) error %v, want it to contain %q", tc.sel, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a = 1", "x LIKE 'a%b' ESCAPE '!'", "NOT (a IN ('x','y') OR b BETWEEN 1 AND 2)", "a IS NOT NULL", "-a*2/0 >= 1.5e3"} {
		f.Add(s)
	}
	get := props(map[string]any{"a": int64(1), "b": "2", "x": "abc"})
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			return
		}
		s.Matches(get)
	})
}

func BenchmarkMatches(b *testing.B) {
	s, err := Parse("type = 'order' AND price > 100")
	if err != nil {
		b.Fatal(err)
	}
	get := props(map[string]any{"type": "order", "price": "150"})
	for b.Loop() {
		if !s.Matches(get) {
			b.Fatal("no match")
		}
	}
}
