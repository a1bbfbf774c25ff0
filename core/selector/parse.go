package selector

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits that keep hostile selectors harmless: the parser recurses once per
// nesting level, so bounding nesting bounds its stack.
const (
	maxLength = 4096
	maxDepth  = 100
)

// Selector is a compiled message selector, safe for concurrent use.
type Selector struct {
	src  string
	root expr
}

// String gives the selector's source text.
func (s *Selector) String() string { return s.src }

// Matches reports whether the selector is TRUE for a message whose
// identifiers get resolves (string, int64, float64 or bool; ok false for
// NULL). FALSE and UNKNOWN are no match.
func (s *Selector) Matches(get func(name string) (any, bool)) bool {
	v, _ := s.root.eval(get).(bool)
	return v
}

// Parse compiles a selector. Its error says what is wrong and where, as a
// character offset into s: `selector: unexpected "AND" at offset 12:
// expected an expression`.
func Parse(s string) (*Selector, error) {
	if len(s) > maxLength {
		return nil, syntaxError(s, maxLength, "too long", fmt.Sprintf("at most %d bytes", maxLength))
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{src: s, toks: toks}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t, "expected AND, OR or the end of the selector")
	}
	if err := p.want(root, kBool); err != nil {
		return nil, err
	}
	return &Selector{src: s, root: root.e}, nil
}

// kind is what the parser knows of an expression's type, so that it can
// reject what ActiveMQ rejects at parse time (`price + 1` as a condition,
// `TRUE * 2`) while identifiers, whose type only the message knows, pass.
type kind uint8

const (
	kAny  kind = iota // an identifier
	kBool             // a condition or TRUE/FALSE
	kNum              // a number literal or arithmetic
	kStr              // a string literal
	kNull             // the NULL literal
)

func (k kind) String() string {
	return [...]string{"identifier", "condition", "number", "string", "NULL"}[k]
}

// operand is a parsed expression with its static kind and source offset.
type operand struct {
	e   expr
	k   kind
	pos int
}

type parser struct {
	src   string
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

func (p *parser) unexpected(t token, want string) error {
	what := "end of selector"
	if t.kind != tEOF {
		what = strconv.Quote(p.src[t.pos:t.end])
	}
	return syntaxError(p.src, t.pos, "unexpected "+what, want)
}

// want checks an operand's static kind: kBool where a condition is needed,
// kNum where arithmetic is, kStr for LIKE and IN.
func (p *parser) want(o operand, k kind) error {
	ok := o.k == k || o.k == kAny || k == kNum && o.k == kNull
	if ok {
		return nil
	}
	return syntaxError(p.src, o.pos, "unexpected "+o.k.String(), "expected a "+k.String())
}

// nest runs f one nesting level deeper; t is the token that opens the level.
func (p *parser) nest(t token, f func() (operand, error)) (operand, error) {
	if p.depth++; p.depth > maxDepth {
		return operand{}, p.unexpected(t, fmt.Sprintf("nested deeper than %d", maxDepth))
	}
	defer func() { p.depth-- }()
	return f()
}

func (p *parser) or() (operand, error) { return p.logic("OR", true, p.and) }

func (p *parser) and() (operand, error) { return p.logic("AND", false, p.not) }

// logic parses a chain of AND or OR into one n-ary node, so that a long
// chain costs no depth when evaluated.
func (p *parser) logic(word string, decisive bool, sub func() (operand, error)) (operand, error) {
	first, err := sub()
	if err != nil || !p.is(tKeyword, word) {
		return first, err
	}
	terms := []expr{first.e}
	for o := first; ; {
		if err := p.want(o, kBool); err != nil {
			return operand{}, err
		}
		if !p.accept(tKeyword, word) {
			return operand{logicExpr{terms: terms, decisive: decisive}, kBool, first.pos}, nil
		}
		if o, err = sub(); err != nil {
			return operand{}, err
		}
		terms = append(terms, o.e)
	}
}

func (p *parser) not() (operand, error) {
	t := p.peek()
	if !p.accept(tKeyword, "NOT") {
		return p.comparison()
	}
	return p.nest(t, func() (operand, error) {
		o, err := p.not()
		if err == nil {
			err = p.want(o, kBool)
		}
		return operand{notExpr{o.e}, kBool, t.pos}, err
	})
}

func (p *parser) comparison() (operand, error) {
	l, err := p.additive()
	if err != nil {
		return operand{}, err
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
	case t.kind == tOp && cmpOps[t.text] != 0:
		p.next()
		e, err = p.compare(l, cmpOps[t.text])
	case t.kind == tKeyword && t.text == "LIKE":
		p.next()
		e, err = p.like(l)
	case t.kind == tKeyword && t.text == "IN":
		p.next()
		e, err = p.in(l)
	case t.kind == tKeyword && t.text == "BETWEEN":
		p.next()
		e, err = p.between(l)
	case t.kind == tKeyword && t.text == "IS":
		p.next()
		not := p.accept(tKeyword, "NOT")
		if !p.accept(tKeyword, "NULL") {
			return operand{}, p.unexpected(p.peek(), "expected NULL after IS")
		}
		e = isNullExpr{e: l.e, not: not}
	default:
		return l, nil
	}
	if err != nil {
		return operand{}, err
	}
	if negate {
		e = notExpr{e}
	}
	return operand{e, kBool, l.pos}, nil
}

func (p *parser) compare(l operand, op cmpOp) (expr, error) {
	r, err := p.additive()
	if err != nil {
		return nil, err
	}
	// Booleans have no order (JMS 3.8.1.2); strings do, as in ActiveMQ.
	if op != opEq && op != opNe {
		for _, o := range []operand{l, r} {
			if o.k == kBool {
				return nil, syntaxError(p.src, o.pos, "unexpected condition", "booleans compare only with = and <>")
			}
		}
	}
	return compareExpr{op: op, l: l.e, r: r.e}, nil
}

func (p *parser) between(l operand) (expr, error) {
	lo, err := p.additive()
	if err != nil {
		return nil, err
	}
	if !p.accept(tKeyword, "AND") {
		return nil, p.unexpected(p.peek(), "expected AND in BETWEEN")
	}
	hi, err := p.additive()
	if err != nil {
		return nil, err
	}
	for _, o := range []operand{l, lo, hi} {
		if err := p.want(o, kNum); err != nil {
			return nil, err
		}
	}
	return betweenExpr{e: l.e, lo: lo.e, hi: hi.e}, nil
}

func (p *parser) like(l operand) (expr, error) {
	if err := p.want(l, kStr); err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tString {
		return nil, p.unexpected(t, "expected a quoted LIKE pattern")
	}
	escape := rune(-1)
	if p.accept(tKeyword, "ESCAPE") {
		et := p.next()
		runes := []rune(et.text)
		if et.kind != tString || len(runes) != 1 {
			return nil, p.unexpected(et, "expected one quoted ESCAPE character")
		}
		escape = runes[0]
	}
	return likeExpr{e: l.e, m: compileLike(t.text, escape)}, nil
}

func (p *parser) in(l operand) (expr, error) {
	if err := p.want(l, kStr); err != nil {
		return nil, err
	}
	if !p.accept(tOp, "(") {
		return nil, p.unexpected(p.peek(), "expected ( after IN")
	}
	set := map[string]struct{}{}
	for {
		t := p.next()
		if t.kind != tString {
			return nil, p.unexpected(t, "expected a quoted string in the IN list")
		}
		set[t.text] = struct{}{}
		if p.accept(tOp, ")") {
			return inExpr{e: l.e, set: set}, nil
		}
		if !p.accept(tOp, ",") {
			return nil, p.unexpected(p.peek(), "expected , or ) in the IN list")
		}
	}
}

func (p *parser) additive() (operand, error) { return p.arith("+-", p.multiplicative) }

func (p *parser) multiplicative() (operand, error) { return p.arith("*/%", p.unary) }

// arith parses a left-associative chain of the operators in ops.
func (p *parser) arith(ops string, sub func() (operand, error)) (operand, error) {
	l, err := sub()
	for err == nil {
		t := p.peek()
		if t.kind != tOp || len(t.text) != 1 || !strings.Contains(ops, t.text) {
			break
		}
		p.next()
		var r operand
		if r, err = sub(); err != nil {
			break
		}
		if err = p.want(l, kNum); err == nil {
			err = p.want(r, kNum)
		}
		l = operand{arithExpr{op: t.text[0], l: l.e, r: r.e}, kNum, l.pos}
	}
	return l, err
}

func (p *parser) unary() (operand, error) {
	t := p.peek()
	if !p.accept(tOp, "-") && !p.accept(tOp, "+") {
		return p.primary()
	}
	// A negative literal is folded, which is also the only way to write
	// -9223372036854775808.
	if nt := p.peek(); t.text == "-" && (nt.kind == tInt || nt.kind == tFloat) {
		p.next()
		return p.number(nt, "-"+nt.text, t.pos)
	}
	return p.nest(t, func() (operand, error) {
		o, err := p.unary()
		if err == nil {
			err = p.want(o, kNum)
		}
		if t.text == "-" {
			o.e = negExpr{o.e}
		}
		return operand{o.e, kNum, t.pos}, err
	})
}

func (p *parser) number(t token, text string, pos int) (operand, error) {
	if t.kind == tFloat {
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return operand{}, p.unexpected(t, "not a 64-bit floating-point number")
		}
		return operand{literal{v}, kNum, pos}, nil
	}
	// Base 0 reads 0x.. as hexadecimal and a leading 0 as octal, as JMS does.
	v, err := strconv.ParseInt(text, 0, 64)
	if err != nil {
		return operand{}, p.unexpected(t, "not a 64-bit integer")
	}
	return operand{literal{v}, kNum, pos}, nil
}

func (p *parser) primary() (operand, error) {
	t := p.next()
	switch t.kind {
	case tIdent:
		return operand{ident(t.text), kAny, t.pos}, nil
	case tString:
		return operand{literal{t.text}, kStr, t.pos}, nil
	case tInt, tFloat:
		return p.number(t, t.text, t.pos)
	case tKeyword:
		switch t.text {
		case "TRUE":
			return operand{literal{true}, kBool, t.pos}, nil
		case "FALSE":
			return operand{literal{false}, kBool, t.pos}, nil
		case "NULL":
			return operand{literal{nil}, kNull, t.pos}, nil
		}
	case tOp:
		if t.text == "(" {
			return p.nest(t, func() (operand, error) {
				o, err := p.or()
				if err == nil && !p.accept(tOp, ")") {
					err = p.unexpected(p.peek(), "expected )")
				}
				o.pos = t.pos
				return o, err
			})
		}
	}
	return operand{}, p.unexpected(t, "expected an expression")
}
