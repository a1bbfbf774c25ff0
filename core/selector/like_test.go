package selector

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// likeRegexp is the obvious translation of a LIKE pattern, used as the
// reference for the hand-written matcher.
func likeRegexp(pattern string, escape rune) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	runes := []rune(pattern)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; {
		case c == escape && i+1 < len(runes):
			i++
			b.WriteString(regexp.QuoteMeta(string(runes[i])))
		case c == '%':
			b.WriteString(`.*`)
		case c == '_':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// TestLikeAgainstRegexp compares the matcher with regexp on random patterns
// and subjects over a small alphabet, where wildcards and backtracking meet
// often.
func TestLikeAgainstRegexp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const patternAlphabet, subjectAlphabet = "ab%_!é", "ab%_!é\n"
	random := func(alphabet string, n int) string {
		runes := []rune(alphabet)
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		return b.String()
	}
	matches := 0
	for i := range 22000 {
		// Mostly short cases; some long enough to span several automaton words.
		pattern, subject := random(patternAlphabet, 8), random(subjectAlphabet, 10)
		escape := rune(-1)
		if rng.IntN(2) == 0 {
			escape = '!'
		}
		if i >= 20000 {
			// A random long subject would almost never match, so derive
			// one from the pattern and then perhaps break it.
			pattern = random(patternAlphabet, 200)
			var b strings.Builder
			runes := []rune(pattern)
			for j := 0; j < len(runes); j++ {
				switch c := runes[j]; {
				case c == escape && j+1 < len(runes):
					j++
					b.WriteRune(runes[j])
				case c == '%':
					b.WriteString(random(subjectAlphabet, 4))
				case c == '_':
					one := []rune(subjectAlphabet)
					b.WriteRune(one[rng.IntN(len(one))])
				default:
					b.WriteRune(c)
				}
			}
			subject = b.String()
			if n := len(subject); n > 0 && rng.IntN(2) == 0 {
				k := rng.IntN(n)
				subject = subject[:k] + "b" + subject[k+1:]
			}
		}
		want := likeRegexp(pattern, escape).MatchString(subject)
		if want {
			matches++
		}
		m := compileLike(pattern, escape)
		walked, done := m.walk(subject, 1<<30)
		if !done || walked != want || m.nfa.match(subject) != want || m.match(subject) != want {
			t.Fatalf("%q LIKE %q (escape %q): walk %v (done %v), automaton %v, want %v",
				subject, pattern, escape, walked, done, m.nfa.match(subject), want)
		}
	}
	t.Logf("%d of the cases matched", matches)
}

// TestLikeHostile checks that patterns built to make the walk backtrack on
// a long value are handed to the automaton, and still answer right.
func TestLikeHostile(t *testing.T) {
	value := strings.Repeat("a", 1<<20)
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"%" + strings.Repeat("a_", 1000) + "b", false},
		{"%" + strings.Repeat("a", 2000) + "_b", false},
		{"%" + strings.Repeat("a_", 1000), true},
		{"%" + strings.Repeat("_a", 1000) + "%", true},
	} {
		m := compileLike(tc.pattern, -1)
		if _, done := m.walk(value, 8*len(value)+1024); done && !tc.want {
			t.Errorf("the walk finished %.20q... within its budget; the case no longer tests the automaton", tc.pattern)
		}
		if got := m.match(value); got != tc.want {
			t.Errorf("%.20q... = %v, want %v", tc.pattern, got, tc.want)
		}
	}
}
