package selector

import (
	"fmt"
	"strconv"
)

// Limits that keep hostile selectors harmless.
const (
	maxLength = 4096
	maxDepth  = 100
)

// Selector is a compiled message selector.
type Selector struct {
	src  string
	root expr
}

// String gives the selector's source text.
func (s *Selector) String() string { return s.src }

// Matches reports whether the selector is TRUE for a message whose
// identifiers get resolves (string, int64, float64 or bool; ok false for
// NULL). UNKNOWN counts as no match.
func (s *Selector) Matches(get func(name string) (any, bool)) bool {
	v, _ := s.root.eval(get).(bool)
	return v
}

// Parse compiles a selector; its error names what is wrong and where.
func Parse(src string) (*Selector, error) {
	if len(src) > maxLength {
		return nil, fmt.Errorf("selector: longer than %d bytes", maxLength)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "expected the end of the selector")
	}
	return &Selector{src: src, root: root}, nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) is(kind tokenKind, text string) bool {
	t := p.peek()
	return t.kind == kind && t.text == text
}

func (p *parser) accept(kind tokenKind, text string) bool {
	if p.is(kind, text) {
		p.i++
		return true
	}
	return false
}

func (p *parser) errorf(t token, format string, args ...any) error {
	what := strconv.Quote(t.text)
	if t.kind == tEOF {
		what = "end of selector"
	}
	return fmt.Errorf("selector: unexpected %s at offset %d: %s", what, t.pos, fmt.Sprintf(format, args...))
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("selector: nested deeper than %d at offset %d", maxDepth, p.peek().pos)
	}
	return nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	for err == nil && p.accept(tKeyword, "OR") {
		var r expr
		if r, err = p.and(); err == nil {
			l = orExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	for err == nil && p.accept(tKeyword, "AND") {
		var r expr
		if r, err = p.not(); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) not() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.accept(tKeyword, "NOT") {
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (expr, error) {
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	negate := false
	if p.is(tKeyword, "NOT") {
		if nt := p.toks[p.i+1]; nt.kind == tKeyword && (nt.text == "LIKE" || nt.text == "IN" || nt.text == "BETWEEN") {
			p.i++
			negate = true
		}
	}
	t := p.peek()
	var e expr
	switch {
	case t.kind == tOp && isComparison(t.text):
		p.next()
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		e = compareExpr{op: t.text, l: l, r: r}
	case t.kind == tKeyword && t.text == "LIKE":
		p.next()
		if e, err = p.like(l); err != nil {
			return nil, err
		}
	case t.kind == tKeyword && t.text == "IN":
		p.next()
		if e, err = p.in(l); err != nil {
			return nil, err
		}
	case t.kind == tKeyword && t.text == "BETWEEN":
		p.next()
		lo, err := p.additive()
		if err != nil {
			return nil, err
		}
		if !p.accept(tKeyword, "AND") {
			return nil, p.errorf(p.peek(), "expected AND in BETWEEN")
		}
		hi, err := p.additive()
		if err != nil {
			return nil, err
		}
		e = andExpr{compareExpr{">=", l, lo}, compareExpr{"<=", l, hi}}
	case t.kind == tKeyword && t.text == "IS":
		p.next()
		not := p.accept(tKeyword, "NOT")
		if !p.accept(tKeyword, "NULL") {
			return nil, p.errorf(p.peek(), "expected NULL after IS")
		}
		return isNullExpr{e: l, not: not}, nil
	default:
		return l, nil
	}
	if negate {
		return notExpr{e}, nil
	}
	return e, nil
}

func isComparison(op string) bool {
	switch op {
	case "=", "<>", "<", "<=", ">", ">=":
		return true
	}
	return false
}

func (p *parser) like(l expr) (expr, error) {
	t := p.next()
	if t.kind != tString {
		return nil, p.errorf(t, "LIKE takes a quoted pattern")
	}
	var escape byte
	if p.accept(tKeyword, "ESCAPE") {
		et := p.next()
		if et.kind != tString || len(et.text) != 1 {
			return nil, p.errorf(et, "ESCAPE takes one quoted character")
		}
		escape = et.text[0]
	}
	return likeExpr{e: l, m: compileLike(t.text, escape)}, nil
}

func (p *parser) in(l expr) (expr, error) {
	if !p.accept(tOp, "(") {
		return nil, p.errorf(p.peek(), "expected ( after IN")
	}
	set := map[string]bool{}
	for {
		t := p.next()
		if t.kind != tString {
			return nil, p.errorf(t, "IN takes a list of quoted strings")
		}
		set[t.text] = true
		if p.accept(tOp, ")") {
			return inExpr{e: l, set: set}, nil
		}
		if !p.accept(tOp, ",") {
			return nil, p.errorf(p.peek(), "expected , or ) in the IN list")
		}
	}
}

func (p *parser) additive() (expr, error) {
	l, err := p.multiplicative()
	for err == nil && (p.is(tOp, "+") || p.is(tOp, "-")) {
		op := p.next().text
		var r expr
		if r, err = p.multiplicative(); err == nil {
			l = arithExpr{op: op[0], l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) multiplicative() (expr, error) {
	l, err := p.unary()
	for err == nil && (p.is(tOp, "*") || p.is(tOp, "/")) {
		op := p.next().text
		var r expr
		if r, err = p.unary(); err == nil {
			l = arithExpr{op: op[0], l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) unary() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.accept(tOp, "-") {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return arithExpr{op: '-', l: literal{int64(0)}, r: e}, nil
	}
	if p.accept(tOp, "+") {
		return p.unary()
	}
	return p.primary()
}

func (p *parser) primary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tIdent:
		return ident(t.text), nil
	case tString:
		return literal{t.text}, nil
	case tInt:
		v, err := strconv.ParseInt(t.text, 0, 64)
		if err != nil {
			return nil, p.errorf(t, "not a 64-bit integer")
		}
		return literal{v}, nil
	case tFloat:
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, p.errorf(t, "not a number")
		}
		return literal{v}, nil
	case tKeyword:
		switch t.text {
		case "TRUE":
			return literal{true}, nil
		case "FALSE":
			return literal{false}, nil
		case "NULL":
			return literal{nil}, nil
		}
	case tOp:
		if t.text == "(" {
			if err := p.enter(); err != nil {
				return nil, err
			}
			defer func() { p.depth-- }()
			e, err := p.or()
			if err != nil {
				return nil, err
			}
			if !p.accept(tOp, ")") {
				return nil, p.errorf(p.peek(), "expected )")
			}
			return e, nil
		}
	}
	return nil, p.errorf(t, "expected an expression")
}
