package selector

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tString
	tInt
	tFloat
	tOp // = <> < <= > >= + - * / % ( ) ,
	tKeyword
)

type token struct {
	kind tokenKind
	text string // keywords upper-cased; strings unquoted; numbers without the L suffix
	pos  int    // byte offset in the source
	end  int    // byte offset just past the token in the source
}

var keywords = map[string]bool{
	"NOT": true, "AND": true, "OR": true, "BETWEEN": true, "LIKE": true, "IN": true,
	"IS": true, "NULL": true, "ESCAPE": true, "TRUE": true, "FALSE": true,
}

// operators is ordered so that two-character operators win over their prefixes.
var operators = []string{"<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ","}

// syntaxError reports what is wrong at byte offset pos of src; the offset
// shown is counted in characters, as a reader of the selector counts.
func syntaxError(src string, pos int, what, want string) error {
	err := fmt.Sprintf("selector: %s at offset %d", what, utf8.RuneCountInString(src[:pos]))
	if want != "" {
		err += ": " + want
	}
	return errors.New(err)
}

func lex(src string) ([]token, error) {
	var out []token
	for i := 0; i < len(src); {
		c := src[i]
		var t token
		var err error
		switch {
		case strings.IndexByte(" \t\n\r\f", c) >= 0:
			i++
			continue
		case c == '\'':
			t, err = lexString(src, i)
		case isDigit(c) || c == '.' && i+1 < len(src) && isDigit(src[i+1]):
			t = lexNumber(src, i)
		default:
			if r, _ := utf8.DecodeRuneInString(src[i:]); isIdentStart(r) {
				t = lexWord(src, i)
				break
			}
			t, err = lexOperator(src, i)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		i = t.end
	}
	return append(out, token{kind: tEOF, pos: len(src)}), nil
}

func lexString(src string, start int) (token, error) {
	var b strings.Builder
	for j := start + 1; j < len(src); j++ {
		if src[j] != '\'' {
			b.WriteByte(src[j])
			continue
		}
		if j+1 < len(src) && src[j+1] == '\'' {
			b.WriteByte('\'')
			j++
			continue
		}
		return token{kind: tString, text: b.String(), pos: start, end: j + 1}, nil
	}
	return token{}, syntaxError(src, start, "unterminated string", "")
}

// lexNumber scans the literals ActiveMQ's grammar knows: decimal (with an
// optional L), hexadecimal 0x.., octal 0.., and decimal floats with an
// optional exponent. Anything malformed is left to the parser to reject.
func lexNumber(src string, start int) token {
	j := start
	digits := func(ok func(byte) bool) {
		for j < len(src) && ok(src[j]) {
			j++
		}
	}
	if src[j] == '0' && j+2 < len(src) && (src[j+1] == 'x' || src[j+1] == 'X') && isHex(src[j+2]) {
		j += 2
		digits(isHex)
		return suffixL(src, start, j)
	}
	digits(isDigit)
	float := false
	if j < len(src) && src[j] == '.' {
		float = true
		j++
		digits(isDigit)
	}
	if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
		k := j + 1
		if k < len(src) && (src[k] == '+' || src[k] == '-') {
			k++
		}
		if k < len(src) && isDigit(src[k]) {
			float = true
			j = k
			digits(isDigit)
		}
	}
	if float {
		return token{kind: tFloat, text: src[start:j], pos: start, end: j}
	}
	return suffixL(src, start, j)
}

func suffixL(src string, start, j int) token {
	t := token{kind: tInt, text: src[start:j], pos: start, end: j}
	if j < len(src) && (src[j] == 'l' || src[j] == 'L') {
		t.end++
	}
	return t
}

func lexWord(src string, start int) token {
	j := start
	for j < len(src) {
		r, size := utf8.DecodeRuneInString(src[j:])
		if !isIdentStart(r) && !unicode.In(r, unicode.Nd, unicode.Mn, unicode.Mc) {
			break
		}
		j += size
	}
	word := src[start:j]
	if up := strings.ToUpper(word); keywords[up] {
		return token{kind: tKeyword, text: up, pos: start, end: j}
	}
	return token{kind: tIdent, text: word, pos: start, end: j}
}

func lexOperator(src string, start int) (token, error) {
	for _, op := range operators {
		if strings.HasPrefix(src[start:], op) {
			return token{kind: tOp, text: op, pos: start, end: start + len(op)}, nil
		}
	}
	r, _ := utf8.DecodeRuneInString(src[start:])
	return token{}, syntaxError(src, start, fmt.Sprintf("unexpected character %q", r), "")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// isIdentStart follows Java's Character.isJavaIdentifierStart: letters,
// letter numbers, currency symbols ($) and connecting punctuation (_).
func isIdentStart(r rune) bool { return unicode.In(r, unicode.L, unicode.Nl, unicode.Sc, unicode.Pc) }
