package selector

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// expr evaluates to nil (NULL or UNKNOWN), bool, int64, float64 or string.
type expr interface {
	eval(get func(string) (any, bool)) any
}

type literal struct{ v any }

func (l literal) eval(func(string) (any, bool)) any { return l.v }

type ident string

func (i ident) eval(get func(string) (any, bool)) any {
	v, ok := get(string(i))
	if !ok {
		return nil
	}
	switch v := v.(type) {
	case string, int64, float64, bool:
		return v
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case float32:
		return float64(v)
	}
	return nil
}

func truth(v any) (value, known bool) {
	b, ok := v.(bool)
	return b, ok
}

type andExpr struct{ l, r expr }

func (e andExpr) eval(get func(string) (any, bool)) any {
	l, lk := truth(e.l.eval(get))
	if lk && !l {
		return false
	}
	r, rk := truth(e.r.eval(get))
	switch {
	case rk && !r:
		return false
	case lk && rk:
		return true
	}
	return nil
}

type orExpr struct{ l, r expr }

func (e orExpr) eval(get func(string) (any, bool)) any {
	l, lk := truth(e.l.eval(get))
	if lk && l {
		return true
	}
	r, rk := truth(e.r.eval(get))
	switch {
	case rk && r:
		return true
	case lk && rk:
		return false
	}
	return nil
}

type notExpr struct{ e expr }

func (e notExpr) eval(get func(string) (any, bool)) any {
	if v, ok := truth(e.e.eval(get)); ok {
		return !v
	}
	return nil
}

type isNullExpr struct {
	e   expr
	not bool
}

func (e isNullExpr) eval(get func(string) (any, bool)) any {
	return (e.e.eval(get) == nil) != e.not
}

// number reads v as a number, converting a numeric string.
func number(v any) (any, bool) {
	switch v := v.(type) {
	case int64, float64:
		return v, true
	case string:
		s := strings.TrimSpace(v)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, true
		}
	}
	return nil, false
}

func asFloat(v any) float64 {
	if i, ok := v.(int64); ok {
		return float64(i)
	}
	return v.(float64)
}

type arithExpr struct {
	op   byte
	l, r expr
}

func (e arithExpr) eval(get func(string) (any, bool)) any {
	l, lok := number(e.l.eval(get))
	r, rok := number(e.r.eval(get))
	if !lok || !rok {
		return nil
	}
	li, lint := l.(int64)
	ri, rint := r.(int64)
	if lint && rint {
		switch e.op {
		case '+':
			return li + ri
		case '-':
			return li - ri
		case '*':
			return li * ri
		case '/':
			if ri == 0 || li == math.MinInt64 && ri == -1 {
				return nil
			}
			return li / ri
		}
	}
	lf, rf := asFloat(l), asFloat(r)
	switch e.op {
	case '+':
		return lf + rf
	case '-':
		return lf - rf
	case '*':
		return lf * rf
	}
	if rf == 0 {
		return nil
	}
	return lf / rf
}

type compareExpr struct {
	op   string
	l, r expr
}

func (e compareExpr) eval(get func(string) (any, bool)) any {
	c, ok := compare(e.l.eval(get), e.r.eval(get))
	if !ok {
		return nil
	}
	switch e.op {
	case "=":
		return c == 0
	case "<>":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// compare orders two values; ok is false when they cannot be compared (a
// NULL, or types with no conversion between them).
func compare(l, r any) (int, bool) {
	if l == nil || r == nil {
		return 0, false
	}
	ls, lstr := l.(string)
	rs, rstr := r.(string)
	if lstr && rstr {
		return strings.Compare(ls, rs), true
	}
	lb, lbool := l.(bool)
	rb, rbool := r.(bool)
	if lbool || rbool {
		if !lbool {
			lb, lbool = parseBool(l)
		}
		if !rbool {
			rb, rbool = parseBool(r)
		}
		if !lbool || !rbool {
			return 0, false
		}
		if lb == rb {
			return 0, true
		}
		return 1, true
	}
	ln, lok := number(l)
	rn, rok := number(r)
	if !lok || !rok {
		return 0, false
	}
	li, lint := ln.(int64)
	ri, rint := rn.(int64)
	if lint && rint {
		switch {
		case li < ri:
			return -1, true
		case li > ri:
			return 1, true
		}
		return 0, true
	}
	lf, rf := asFloat(ln), asFloat(rn)
	switch {
	case lf < rf:
		return -1, true
	case lf > rf:
		return 1, true
	case lf == rf:
		return 0, true
	}
	return 0, false
}

func parseBool(v any) (bool, bool) {
	s, ok := v.(string)
	if !ok {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

type inExpr struct {
	e   expr
	set map[string]bool
}

func (e inExpr) eval(get func(string) (any, bool)) any {
	s, ok := e.e.eval(get).(string)
	if !ok {
		return nil
	}
	return e.set[s]
}

type likeExpr struct {
	e expr
	m likeMatcher
}

func (e likeExpr) eval(get func(string) (any, bool)) any {
	s, ok := e.e.eval(get).(string)
	if !ok {
		return nil
	}
	return e.m.match(s)
}

// likeMatcher is a LIKE pattern compiled to literal runs and wildcards.
type likeMatcher []likePart

type likePart struct {
	any  bool   // % : any run of characters
	one  bool   // _ : exactly one character
	text string // otherwise a literal run
}

func compileLike(pattern string, escape byte) likeMatcher {
	var m likeMatcher
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			m = append(m, likePart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case escape != 0 && c == escape && i+1 < len(pattern):
			i++
			lit.WriteByte(pattern[i])
		case c == '%':
			flush()
			if len(m) == 0 || !m[len(m)-1].any {
				m = append(m, likePart{any: true})
			}
		case c == '_':
			flush()
			m = append(m, likePart{one: true})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return m
}

// match walks the pattern with backtracking only at the last %, which keeps
// it linear in practice.
func (m likeMatcher) match(s string) bool {
	pi, si := 0, 0
	star, starS := -1, 0
	for si <= len(s) {
		if pi < len(m) {
			p := m[pi]
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
			case !p.any && !p.one && strings.HasPrefix(s[si:], p.text):
				si += len(p.text)
				pi++
				continue
			}
		} else if si == len(s) {
			return true
		}
		if star < 0 || starS >= len(s) {
			return false
		}
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		pi, si = star+1, starS
	}
	return false
}
