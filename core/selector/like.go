package selector

import (
	"strings"
	"unicode/utf8"
)

// likeMatcher is a LIKE pattern compiled once at parse time. It matches with
// a fast walk over literal runs and wildcards, and when a hostile pattern
// and value make that walk costly (it is quadratic at worst: '%a_a_a_…b'
// against a long run of a's), with an automaton whose cost is linear in the
// value whatever the pattern.
type likeMatcher struct {
	parts []likePart
	nfa   likeNFA
}

type likePart struct {
	any  bool   // %: any run of characters, possibly empty
	one  bool   // _: exactly one character
	text string // otherwise a literal run
}

// compileLike reads pattern with escape as its escape character (-1 for
// none). As in ActiveMQ, an escape character ending the pattern stands for
// itself.
func compileLike(pattern string, escape rune) likeMatcher {
	var parts []likePart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, likePart{text: lit.String()})
			lit.Reset()
		}
	}
	runes := []rune(pattern)
	for i := 0; i < len(runes); i++ {
		switch c := runes[i]; {
		case c == escape && i+1 < len(runes):
			i++
			lit.WriteRune(runes[i])
		case c == '%':
			flush()
			if len(parts) == 0 || !parts[len(parts)-1].any {
				parts = append(parts, likePart{any: true})
			}
		case c == '_':
			flush()
			parts = append(parts, likePart{one: true})
		default:
			lit.WriteRune(c)
		}
	}
	flush()
	return likeMatcher{parts: parts, nfa: newLikeNFA(parts)}
}

func (m likeMatcher) match(s string) bool {
	// The walk touches each byte a few times on ordinary patterns; eight
	// times over is the sign of a pattern built to backtrack.
	if ok, done := m.walk(s, 8*len(s)+1024); done {
		return ok
	}
	return m.nfa.match(s)
}

// walk is the classic wildcard walk that backtracks only to the latest %: a
// later % can absorb whatever an earlier one would have. It gives up (done
// false) once it has compared more than budget bytes.
func (m likeMatcher) walk(s string, budget int) (ok, done bool) {
	pi, si := 0, 0
	star, starS := -1, 0
	for ; budget > 0; budget-- {
		if pi < len(m.parts) {
			p := m.parts[pi]
			switch {
			case p.any:
				star, starS = pi, si
				pi++
				continue
			case p.one && si < len(s):
				_, size := utf8.DecodeRuneInString(s[si:])
				si += size
				pi++
				continue
			case !p.one && strings.HasPrefix(s[si:], p.text):
				budget -= len(p.text)
				si += len(p.text)
				pi++
				continue
			}
		} else if si == len(s) {
			return true, true
		}
		if star < 0 || starS >= len(s) {
			return false, true
		}
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		// When a literal follows the %, only where it occurs can the rest
		// match: jumping there keeps '%key%' patterns fast on long values.
		if next := star + 1; next < len(m.parts) && m.parts[next].text != "" {
			k := strings.Index(s[starS:], m.parts[next].text)
			if k < 0 {
				return false, true
			}
			budget -= k
			starS += k
		}
		pi, si = star+1, starS
	}
	return false, false
}

// likeNFA is the pattern as a bit-parallel automaton (shift-and, with % as a
// self-loop): bit i of the state is set when the first i tokens (characters,
// _ or %) can have matched the value read so far. Each character of the
// value costs one pass over tokens/64 words.
type likeNFA struct {
	n      int               // tokens; bit n set means the whole pattern matched
	star   []uint64          // % tokens
	one    []uint64          // _ tokens: they take any character
	byRune map[rune][]uint64 // tokens each character takes, _ tokens included
}

func newLikeNFA(parts []likePart) likeNFA {
	var tokens []rune // a literal rune, or -1 for _ and -2 for %
	for _, p := range parts {
		switch {
		case p.any:
			tokens = append(tokens, -2)
		case p.one:
			tokens = append(tokens, -1)
		default:
			tokens = append(tokens, []rune(p.text)...)
		}
	}
	words := len(tokens)/64 + 1
	a := likeNFA{n: len(tokens), star: make([]uint64, words), one: make([]uint64, words), byRune: map[rune][]uint64{}}
	for i, r := range tokens {
		switch r {
		case -2:
			a.star[i/64] |= 1 << (i % 64)
		case -1:
			a.one[i/64] |= 1 << (i % 64)
		}
	}
	for i, r := range tokens {
		if r < 0 {
			continue
		}
		mask, ok := a.byRune[r]
		if !ok {
			mask = append([]uint64(nil), a.one...)
			a.byRune[r] = mask
		}
		mask[i/64] |= 1 << (i % 64)
	}
	return a
}

func (a likeNFA) match(s string) bool {
	state := make([]uint64, len(a.star))
	next := make([]uint64, len(a.star))
	state[0] = 1
	a.closeOverStars(state)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		takes, ok := a.byRune[r]
		if !ok || r == utf8.RuneError && size == 1 {
			// An invalid byte is a character no literal matches, as in walk.
			takes = a.one
		}
		var carry, live uint64
		for w := range state {
			moved := state[w] & takes[w]
			next[w] = moved<<1 | carry | state[w]&a.star[w]
			carry = moved >> 63
			live |= next[w]
		}
		if live == 0 {
			return false
		}
		a.closeOverStars(next)
		state, next = next, state
	}
	return state[a.n/64]>>(a.n%64)&1 == 1
}

// closeOverStars lets every % match the empty string: a state before a %
// is also a state after it. Runs of % were merged at compile time, so one
// step reaches every such state.
func (a likeNFA) closeOverStars(state []uint64) {
	var carry uint64
	for w := range state {
		skip := state[w] & a.star[w]
		state[w] |= skip<<1 | carry
		carry = skip >> 63
	}
}
