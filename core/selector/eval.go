package selector

import (
	"math"
	"strconv"
	"strings"
)

// getter resolves an identifier for one message.
type getter = func(name string) (any, bool)

// expr evaluates to nil (NULL or UNKNOWN), bool, int64, float64 or string.
type expr interface {
	eval(get getter) any
}

type literal struct{ v any }

func (l literal) eval(getter) any { return l.v }

type ident string

func (i ident) eval(get getter) any {
	v, ok := get(string(i))
	if !ok {
		return nil
	}
	switch v.(type) {
	case string, int64, float64, bool:
		return v
	}
	// A value the selector language has no type for behaves as absent
	// rather than panicking deeper in.
	return nil
}

// logicExpr is an n-ary AND (decisive false) or OR (decisive true) in
// three-valued logic: one decisive term decides, else any UNKNOWN term
// makes the whole UNKNOWN.
type logicExpr struct {
	terms    []expr
	decisive bool
}

func (e logicExpr) eval(get getter) any {
	unknown := false
	for _, t := range e.terms {
		v, ok := t.eval(get).(bool)
		if !ok {
			unknown = true
		} else if v == e.decisive {
			return v
		}
	}
	if unknown {
		return nil
	}
	return !e.decisive
}

type notExpr struct{ e expr }

func (e notExpr) eval(get getter) any {
	if v, ok := e.e.eval(get).(bool); ok {
		return !v
	}
	return nil
}

type isNullExpr struct {
	e   expr
	not bool
}

func (e isNullExpr) eval(get getter) any { return (e.e.eval(get) == nil) != e.not }

type cmpOp uint8

const (
	opEq cmpOp = iota + 1
	opNe
	opLt
	opLe
	opGt
	opGe
)

var cmpOps = map[string]cmpOp{"=": opEq, "<>": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}

func (op cmpOp) holds(c int) bool {
	switch op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	}
	return c >= 0
}

type compareExpr struct {
	op   cmpOp
	l, r expr
}

func (e compareExpr) eval(get getter) any {
	c, ok := compare(e.l.eval(get), e.r.eval(get), e.op == opEq || e.op == opNe)
	if !ok {
		return nil
	}
	return e.op.holds(c)
}

// betweenExpr evaluates its subject once: `e >= lo AND e <= hi`.
type betweenExpr struct{ e, lo, hi expr }

func (e betweenExpr) eval(get getter) any {
	v := e.e.eval(get)
	lc, lok := compare(v, e.lo.eval(get), false)
	hc, hok := compare(v, e.hi.eval(get), false)
	switch {
	case lok && lc < 0, hok && hc > 0:
		return false
	case lok && hok:
		return true
	}
	return nil
}

// compare orders two values; ok is false (UNKNOWN) when either is NULL or
// they have no common type. A string facing a number or a boolean is read as
// one, because STOMP and MQTT carry every header as a string. Booleans are
// only equal or not: with equality false they are UNKNOWN.
func compare(l, r any, equality bool) (c int, ok bool) {
	if l == nil || r == nil {
		return 0, false
	}
	ls, lstr := l.(string)
	rs, rstr := r.(string)
	if lstr && rstr {
		return strings.Compare(ls, rs), true
	}
	_, lbool := l.(bool)
	_, rbool := r.(bool)
	if lbool || rbool {
		lb, lok := toBool(l)
		rb, rok := toBool(r)
		if !lok || !rok || !equality {
			return 0, false
		}
		if lb == rb {
			return 0, true
		}
		return 1, true
	}
	ln, lok := toNumber(l)
	rn, rok := toNumber(r)
	if !lok || !rok {
		return 0, false
	}
	if !ln.isFloat && !rn.isFloat {
		return cmpOrdered(ln.i, rn.i), true
	}
	lf, rf := ln.float(), rn.float()
	if math.IsNaN(lf) || math.IsNaN(rf) {
		return 0, false
	}
	return cmpOrdered(lf, rf), true
}

func cmpOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func toBool(v any) (b, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// number is an int64 or a float64 without boxing.
type number struct {
	i       int64
	f       float64
	isFloat bool
}

func (n number) float() float64 {
	if n.isFloat {
		return n.f
	}
	return float64(n.i)
}

// toNumber reads v as a number: int64 and float64 as they are, a string
// when it is written as a decimal number (integer first, then float). Java's
// and Go's extras (NaN, Infinity, hex floats, underscores) are not numbers
// in a header.
func toNumber(v any) (number, bool) {
	switch v := v.(type) {
	case int64:
		return number{i: v}, true
	case float64:
		return number{f: v, isFloat: true}, true
	case string:
		s := strings.TrimSpace(v)
		if s == "" || strings.TrimLeft(s, "0123456789+-.eE") != "" {
			return number{}, false
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return number{i: i}, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return number{f: f, isFloat: true}, true
		}
	}
	return number{}, false
}

type negExpr struct{ e expr }

func (e negExpr) eval(get getter) any {
	n, ok := toNumber(e.e.eval(get))
	switch {
	case !ok:
		return nil
	case n.isFloat:
		return -n.f
	}
	return -n.i
}

// arithExpr keeps int64 arithmetic in int64 (wrapping on overflow, as Java's
// long does) and turns to float64 when either side is one. Division or
// remainder by zero is UNKNOWN.
type arithExpr struct {
	op   byte // + - * / %
	l, r expr
}

func (e arithExpr) eval(get getter) any {
	l, lok := toNumber(e.l.eval(get))
	r, rok := toNumber(e.r.eval(get))
	if !lok || !rok {
		return nil
	}
	if !l.isFloat && !r.isFloat {
		return intArith(e.op, l.i, r.i)
	}
	return floatArith(e.op, l.float(), r.float())
}

func intArith(op byte, l, r int64) any {
	return arith(op, l, r, func(a, b int64) int64 { return a % b })
}

func floatArith(op byte, l, r float64) any {
	return arith(op, l, r, math.Mod)
}

// arith applies op; division or remainder by zero is UNKNOWN.
func arith[T int64 | float64](op byte, l, r T, mod func(T, T) T) any {
	switch op {
	case '+':
		return l + r
	case '-':
		return l - r
	case '*':
		return l * r
	}
	if r == 0 {
		return nil
	}
	if op == '/' {
		return l / r
	}
	return mod(l, r)
}

// inExpr tests membership in a set of string literals.
type inExpr struct {
	e   expr
	set map[string]struct{}
}

func (e inExpr) eval(get getter) any {
	s, ok := e.e.eval(get).(string)
	if !ok {
		return nil
	}
	_, in := e.set[s]
	return in
}

type likeExpr struct {
	e expr
	m likeMatcher
}

func (e likeExpr) eval(get getter) any {
	s, ok := e.e.eval(get).(string)
	if !ok {
		return nil
	}
	return e.m.match(s)
}
