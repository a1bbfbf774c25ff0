package selector

import (
	"fmt"
	"strings"
	"unicode"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tIdent
	tString
	tInt
	tFloat
	tOp // = <> < <= > >= + - * / ( ) ,
	tKeyword
)

type token struct {
	kind tokenKind
	text string // keywords upper-cased; strings unquoted
	pos  int
}

var keywords = map[string]bool{
	"NOT": true, "AND": true, "OR": true, "BETWEEN": true, "LIKE": true, "IN": true,
	"IS": true, "NULL": true, "ESCAPE": true, "TRUE": true, "FALSE": true,
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("selector: unterminated string at offset %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			out = append(out, token{tString, b.String(), i})
			i = j + 1
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			kind := tInt
			if c == '0' && j+1 < len(s) && (s[j+1] == 'x' || s[j+1] == 'X') {
				j += 2
				for j < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[j]) >= 0 {
					j++
				}
			} else {
				for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
					(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
					if s[j] == '.' || s[j] == 'e' || s[j] == 'E' {
						kind = tFloat
					}
					j++
				}
			}
			text := s[i:j]
			if j < len(s) && (s[j] == 'L' || s[j] == 'l') && kind == tInt {
				j++
			} else if j < len(s) && strings.IndexByte("fFdD", s[j]) >= 0 {
				kind = tFloat
				j++
			}
			out = append(out, token{kind, text, i})
			i = j
		case c == '_' || c == '$' || c < 0x80 && unicode.IsLetter(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || s[j] == '$' || s[j] < 0x80 && (unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j])))) {
				j++
			}
			word := s[i:j]
			if up := strings.ToUpper(word); keywords[up] {
				out = append(out, token{tKeyword, up, i})
			} else {
				out = append(out, token{tIdent, word, i})
			}
			i = j
		default:
			op := operatorAt(s[i:])
			if op == "" {
				return nil, fmt.Errorf("selector: unexpected character %q at offset %d", c, i)
			}
			out = append(out, token{tOp, op, i})
			i += len(op)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

func operatorAt(s string) string {
	for _, op := range []string{"<>", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "(", ")", ","} {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}
