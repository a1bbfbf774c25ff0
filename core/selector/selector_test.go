package selector

import (
	"strings"
	"testing"
)

// props resolves identifiers from a map, as the core's resolver does.
func props(m map[string]any) func(string) (any, bool) {
	return func(k string) (any, bool) { v, ok := m[k]; return v, ok }
}

// msg mixes typed properties (as AMQP carries them) with string headers (as
// STOMP and MQTT carry them).
var msg = map[string]any{
	"type": "order", "price": int64(150), "weight": 2.5, "vip": true, "big": int64(9223372036854775807),
	"qty": "12", "ratio": "0.5", "flag": "true", "off": "FALSE", "word": "abc", "empty": "", "nan": "NaN",
	"name": "a_b%c", "city": "Zürich", "neg": int64(-3), "zero": int64(0), "fzero": 0.0,
	"odd": []byte("x"), "JMSPriority": int64(4), "$dollar": "d", "_under": "u", "prix€": int64(1),
}

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		// equality and strings
		{"type = 'order'", true},
		{"type = 'Order'", false},
		{"type <> 'order'", false},
		{"type <> 'invoice'", true},
		{"'it''s' = 'it''s'", true},
		{"word < 'abd'", true},
		{"word > 'abd'", false},
		{"word >= 'abc'", true},
		{"empty = ''", true},
		{"city = 'Zürich'", true},
		// numbers, across int and float
		{"price > 100", true},
		{"price = 150.0", true},
		{"price >= 150", true},
		{"price < 150", false},
		{"weight < 3", true},
		{"weight = 2.5", true},
		{"weight <> 2.5", false},
		{"big = 9223372036854775807", true},
		{"big > 9223372036854775806", true},
		{"-9223372036854775808 < 0", true},
		{"0x10 = 16", true},
		{"0X1f = 31", true},
		{"010 = 8", true},
		{"10L = 10", true},
		{"1.5e1 = 15", true},
		{"1E-1 = 0.1", true},
		{".5 = 0.5", true},
		{"5. = 5", true},
		// arithmetic and its precedence
		{"price + 1 * 2 = 152", true},
		{"(price + 1) * 2 = 302", true},
		{"price - 50 - 50 = 50", true},
		{"price / 4 = 37", true},
		{"price / 4.0 = 37.5", true},
		{"price % 7 = 3", true},
		{"weight % 1 = 0.5", true},
		{"weight * 2 = 5", true},
		{"-neg = 3", true},
		{"- -neg = -3", true},
		{"+price = 150", true},
		{"-price * 2 = -300", true},
		{"2 + 3 * 4 - 6 / 2 = 11", true},
		{"big + 1 < 0", true}, // int64 wraps, as Java's long
		{"-9223372036854775808 / -1 < 0", true},
		{"price / 0 = 1", false},
		{"NOT price / 0 = 1", false},
		{"price / zero IS NULL", true},
		{"price % zero IS NULL", true},
		{"weight / fzero IS NULL", true},
		// string headers read as numbers
		{"qty > 10", true},
		{"qty = 12", true},
		{"qty = 12.0", true},
		{"qty * 2 = 24", true},
		{"qty + 0.5 = 12.5", true},
		{"ratio < 1", true},
		{"ratio = 0.5", true},
		{"qty BETWEEN 10 AND 20", true},
		{"12 = qty", true},
		{"qty = '12'", true},
		{"qty = '12.0'", false}, // two strings compare as strings
		{"word > 5", false},
		{"NOT word > 5", false},
		{"word + 1 IS NULL", true},
		{"empty = 0", false},
		{"nan = 0 OR nan <> 0", false},
		{"type > 5", false},
		// booleans and 'true'/'false' strings
		{"vip = TRUE", true},
		{"vip = true", true},
		{"vip <> FALSE", true},
		{"vip", true},
		{"NOT vip", false},
		{"flag", false}, // a string is not a condition
		{"flag = TRUE", true},
		{"off = false", true},
		{"off = TRUE", false},
		{"word = TRUE", false},
		{"NOT word = TRUE", false},
		{"vip = 1", false},
		{"vip = 'true'", true},
		{"TRUE", true},
		{"FALSE", false},
		{"(price > 1) = TRUE", true},
		// BETWEEN
		{"price BETWEEN 100 AND 150", true},
		{"price BETWEEN 151 AND 200", false},
		{"price NOT BETWEEN 100 AND 150", false},
		{"price NOT BETWEEN 151 AND 200", true},
		{"weight BETWEEN 2 AND 3", true},
		{"price BETWEEN 100 AND 100 + 50", true},
		{"missing BETWEEN 1 AND 2", false},
		{"missing NOT BETWEEN 1 AND 2", false},
		{"price BETWEEN 200 AND missing", false},
		{"NOT price BETWEEN 200 AND missing", true}, // FALSE AND UNKNOWN is FALSE
		{"price BETWEEN 100 AND missing", false},
		{"NOT price BETWEEN 100 AND missing", false}, // TRUE AND UNKNOWN is UNKNOWN
		// IN
		{"type IN ('order', 'invoice')", true},
		{"type IN ('invoice')", false},
		{"type NOT IN ('order', 'invoice')", false},
		{"type NOT IN ('invoice', 'refund')", true},
		{"qty IN ('12')", true},
		{"price IN ('150')", false}, // IN is for strings
		{"missing IN ('a')", false},
		{"missing NOT IN ('a')", false},
		// LIKE
		{"type LIKE 'or%'", true},
		{"type LIKE 'o_der'", true},
		{"type LIKE 'order_'", false},
		{"type LIKE '%'", true},
		{"type LIKE '%d%'", true},
		{"type LIKE 'x%'", false},
		{"type NOT LIKE 'x%'", true},
		{"empty LIKE ''", true},
		{"empty LIKE '_'", false},
		{`name LIKE 'a\_b\%%' ESCAPE '\'`, true},
		{`name LIKE 'a\_x%' ESCAPE '\'`, false},
		{"name LIKE 'a!_b!%c' ESCAPE '!'", true},
		{"name LIKE 'a!_b!%' ESCAPE '!'", false},
		{"type LIKE 'order!' ESCAPE '!'", false}, // a trailing escape stands for itself
		{"city LIKE 'Z_rich'", true},
		{"city LIKE 'Z__rich'", false},
		{"word LIKE 'aébc' ESCAPE 'é'", true},
		{"price LIKE '1%'", false},
		{"missing LIKE '%'", false},
		{"missing NOT LIKE '%'", false},
		// NULL and three-valued logic
		{"missing IS NULL", true},
		{"missing IS NOT NULL", false},
		{"type IS NOT NULL", true},
		{"odd IS NULL", true}, // a value of no selector type
		{"odd = 'x'", false},
		{"missing = 1", false},
		{"NOT missing = 1", false},
		{"missing <> 1", false},
		{"missing = missing", false},
		{"NULL IS NULL", true},
		{"missing + 1 IS NULL", true},
		{"missing = 1 OR price > 1", true},
		{"missing = 1 OR price < 1", false},
		{"NOT (missing = 1 OR price < 1)", false},
		{"missing = 1 AND price > 1", false},
		{"NOT (missing = 1 AND price > 1)", false},
		{"NOT (missing = 1 AND price < 1)", true},
		{"missing", false},
		{"NOT missing", false},
		// keywords are case-insensitive, identifiers are not
		{"type = 'order' and price > 100 or false", true},
		{"Type = 'order'", false},
		{"type not in ('x') AnD price between 1 and 200", true},
		{"missing is null", true},
		{"type Like 'o%' escape '!'", true},
		{"NoT FaLsE", true},
		{"$dollar = 'd' AND _under = 'u' AND prix€ = 1", true},
		{"JMSPriority > 3", true},
		// precedence of the logical operators
		{"FALSE AND FALSE OR TRUE", true},
		{"TRUE OR FALSE AND FALSE", true},
		{"NOT FALSE AND FALSE", false},
		{"NOT (FALSE AND FALSE)", true},
		{"(TRUE OR FALSE) AND FALSE", false},
		{"price > 1 AND price < 1000 AND type = 'order' AND vip AND qty > 1", true},
		{"price < 1 OR price > 1000 OR type = 'x' OR NOT vip OR qty = 12", true},
		// whitespace
		{"\ttype='order'\n AND\r\nprice>100 ", true},
	} {
		s, err := Parse(tc.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sel, err)
			continue
		}
		if got := s.Matches(props(msg)); got != tc.want {
			t.Errorf("%q = %v, want %v", tc.sel, got, tc.want)
		}
		if s.String() != tc.sel {
			t.Errorf("String() = %q, want %q", s.String(), tc.sel)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ sel, want string }{
		{"", "unexpected end of selector at offset 0: expected an expression"},
		{"  ", "unexpected end of selector at offset 2: expected an expression"},
		{"price >", "unexpected end of selector at offset 7: expected an expression"},
		{"price > > 3", `unexpected ">" at offset 8: expected an expression`},
		{"a = 1 AND AND b = 2", `unexpected "AND" at offset 10: expected an expression`},
		{"a = 1 b", `unexpected "b" at offset 6: expected AND, OR or the end of the selector`},
		{"a = 1 = 2", `unexpected "=" at offset 6`},
		{"type = 'open", "unterminated string at offset 7"},
		{"a # 1", "unexpected character '#' at offset 2"},
		{"a != 1", "unexpected character '!' at offset 2"},
		{"a == 1", `unexpected "=" at offset 3: expected an expression`},
		{"(a = 1", "unexpected end of selector at offset 6: expected )"},
		{"a = 1)", `unexpected ")" at offset 5`},
		{"a IN (1, 2)", `unexpected "1" at offset 6: expected a quoted string in the IN list`},
		{"a IN ()", `unexpected ")" at offset 6: expected a quoted string in the IN list`},
		{"a IN 'x'", `unexpected "'x'" at offset 5: expected ( after IN`},
		{"a IN ('x' 'y')", `unexpected "'y'" at offset 10: expected , or ) in the IN list`},
		{"a LIKE 5", `unexpected "5" at offset 7: expected a quoted LIKE pattern`},
		{"a LIKE 'x' ESCAPE 'ab'", `unexpected "'ab'" at offset 18: expected one quoted ESCAPE character`},
		{"a LIKE 'x' ESCAPE ''", "at offset 18: expected one quoted ESCAPE character"},
		{"a BETWEEN 1 OR 2", `unexpected "OR" at offset 12: expected AND in BETWEEN`},
		{"a IS 5", `unexpected "5" at offset 5: expected NULL after IS`},
		{"a IS NOT", "unexpected end of selector at offset 8: expected NULL after IS"},
		{"a NOT = 1", `unexpected "NOT" at offset 2`},
		{"a = 99999999999999999999", `unexpected "99999999999999999999" at offset 4: not a 64-bit integer`},
		{"a = 09", "at offset 4: not a 64-bit integer"},
		{"a = 1e999", "at offset 4: not a 64-bit floating-point number"},
		// what ActiveMQ rejects by type at parse time
		{"price + 1", "unexpected number at offset 0: expected a condition"},
		{"'order'", "unexpected string at offset 0: expected a condition"},
		{"NULL", "unexpected NULL at offset 0: expected a condition"},
		{"a = 1 AND 5", "unexpected number at offset 10: expected a condition"},
		{"NOT 'x'", "unexpected string at offset 4: expected a condition"},
		{"'a' + 1 = 2", "unexpected string at offset 0: expected a number"},
		{"a * (b = 1) = 2", "unexpected condition at offset 4: expected a number"},
		{"-TRUE = 1", "unexpected condition at offset 1: expected a number"},
		{"a < TRUE", "unexpected condition at offset 4: booleans compare only with = and <>"},
		{"a BETWEEN 'a' AND 'c'", "unexpected string at offset 10: expected a number"},
		{"5 LIKE '5'", "unexpected number at offset 0: expected a string"},
		{"TRUE IN ('x')", "unexpected condition at offset 0: expected a string"},
		// offsets count characters, not bytes
		{"city = 'Zürich' AND", "unexpected end of selector at offset 19: expected an expression"},
		{"prix€ é 1", "unexpected \"é\" at offset 6"},
		// limits
		{strings.Repeat("(", 101) + "a = 1" + strings.Repeat(")", 101), `unexpected "(" at offset 100: nested deeper than 100`},
		{strings.Repeat("NOT ", 101) + "a", `unexpected "NOT" at offset 400: nested deeper than 100`},
		{strings.Repeat("-", 102) + "a = 1", `unexpected "-" at offset 100: nested deeper than 100`},
		{"a = '" + strings.Repeat("x", 5000) + "'", "too long at offset 4096: at most 4096 bytes"},
	} {
		_, err := Parse(tc.sel)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "selector: ") {
			t.Errorf("Parse(%.60q) error %v, want it to contain %q", tc.sel, err, tc.want)
		}
	}
}

// TestLimitsAccepted checks that what stays within the limits parses and
// evaluates: deep nesting up to the limit and long flat chains, which cost
// no depth.
func TestLimitsAccepted(t *testing.T) {
	chain := "price > 1" + strings.Repeat(" AND price > 1", (maxLength-20)/14)
	sum := "1" + strings.Repeat("+1", (maxLength-20)/2) + " > 0"
	for _, sel := range []string{
		strings.Repeat("(", maxDepth) + "price > 1" + strings.Repeat(")", maxDepth),
		strings.Repeat("NOT ", maxDepth) + "price > 1",
		strings.Repeat("- ", maxDepth) + "-1 < 0 OR TRUE",
		chain,
		sum,
	} {
		if len(sel) > maxLength {
			t.Fatalf("test selector of %d bytes exceeds the limit", len(sel))
		}
		s, err := Parse(sel)
		if err != nil {
			t.Errorf("Parse(%.40q...): %v", sel, err)
			continue
		}
		if !s.Matches(props(msg)) {
			t.Errorf("%.40q... did not match", sel)
		}
	}
}

// TestMatchesConcurrently checks that a compiled selector can be shared by
// the dispatchers of many destinations (run with -race to see it).
func TestMatchesConcurrently(t *testing.T) {
	s, err := Parse("type LIKE 'o%' AND price BETWEEN 100 AND 200 AND qty IN ('12')")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 1000 {
				ok = ok && s.Matches(props(msg))
			}
			done <- ok
		}()
	}
	for range 4 {
		if !<-done {
			t.Error("a concurrent Matches returned false")
		}
	}
}

func BenchmarkMatches(b *testing.B) {
	s, err := Parse("type = 'order' AND price > 100")
	if err != nil {
		b.Fatal(err)
	}
	get := props(map[string]any{"type": "order", "price": "150", "other": int64(1)})
	b.ReportAllocs()
	for b.Loop() {
		if !s.Matches(get) {
			b.Fatal("no match")
		}
	}
}
