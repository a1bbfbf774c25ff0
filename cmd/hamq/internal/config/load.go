package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a configuration mistake: where it is and what is wrong.
type Error struct {
	File string
	Line int
	Key  string // dotted path, e.g. stomp.maxFrameSize
	Msg  string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// Load reads a configuration file over the defaults.
func Load(path string) (Config, error) {
	c := Default()
	err := loadInto(path, &c)
	return c, err
}

// loadInto reads the YAML file at path into the struct v points to,
// whose fields keep their values where the file says nothing.
func loadInto(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return syntaxError(path, err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	l := loader{file: path}
	return l.object(doc.Content[0], reflect.ValueOf(v).Elem(), "")
}

// yamlLine is how yaml.v3 starts a syntax error: "yaml: line N: ...".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError gives a YAML syntax error the form of every other
// configuration error, file:line: what.
func syntaxError(path string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %s", path, strings.Join(te.Errors, "; "))
	}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: path, Line: line, Msg: msg[len(m[0]):]}
	}
	return fmt.Errorf("%s: %s", path, strings.TrimPrefix(msg, "yaml: "))
}

type loader struct{ file string }

func (l loader) errorf(n *yaml.Node, key, format string, args ...any) error {
	return &Error{File: l.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// object fills struct v from mapping node n, whose keys are v's yaml tags.
func (l loader) object(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		return l.errorf(n, path, "want a section of keys, found %s", describe(n))
	}
	t := v.Type()
	var names []string
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("yaml"))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if path != "" {
			key = path + "." + k.Value
		}
		idx := slices.Index(names, k.Value)
		if idx < 0 {
			msg := "unknown key"
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			return l.errorf(k, key, "%s", msg)
		}
		if err := l.value(val, v.Field(idx), t.Field(idx), key); err != nil {
			return err
		}
	}
	return l.validate(n, v, path)
}

// validate checks a section as a whole once its keys are read.
func (l loader) validate(n *yaml.Node, v reflect.Value, path string) error {
	if s, ok := v.Interface().(interface{ validate() (string, error) }); ok {
		if k, err := s.validate(); err != nil {
			key := k
			if path != "" && k != "" {
				key = path + "." + k
			} else if k == "" {
				key = path
			}
			return l.errorf(keyNode(n, k), key, "%v", err)
		}
	}
	return nil
}

// keyNode is the node of key in mapping n, or n when the key is absent,
// so that a section's error points at the line it concerns.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return n
}

func (l loader) value(n *yaml.Node, v reflect.Value, f reflect.StructField, key string) error {
	if v.Kind() == reflect.Struct {
		return l.object(n, v, key)
	}
	if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct {
		return l.structs(n, v, key)
	}
	if list, ok := v.Addr().Interface().(*[]string); ok && f.Tag.Get("groups") == "true" && n.Kind == yaml.ScalarNode {
		// ActiveMQ's form, read="consumers,admins".
		*list = []string{}
		for _, g := range strings.Split(n.Value, ",") {
			if g = strings.TrimSpace(g); g != "" {
				*list = append(*list, g)
			}
		}
		return nil
	}
	if list, ok := v.Addr().Interface().(*[]string); ok {
		if n.Kind != yaml.SequenceNode {
			return l.errorf(n, key, "want a list, found %s", describe(n))
		}
		*list = []string{}
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return l.errorf(item, key, "want a list of single values, found %s", describe(item))
			}
			if sep := f.Tag.Get("pair"); sep != "" {
				if name, _, ok := strings.Cut(item.Value, sep); !ok || name == "" {
					return l.errorf(item, key, "want entries of the form %s, found %q", f.Tag.Get("pairForm"), item.Value)
				}
			}
			*list = append(*list, item.Value)
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return l.errorf(n, key, "want a single value, found %s", describe(n))
	}
	s := n.Value
	var err error
	switch v.Addr().Interface().(type) {
	case *Address:
		var a Address
		if a, err = parseAddress(s); err == nil {
			v.SetString(string(a))
		}
	case *Size:
		var z Size
		if z, err = parseSize(s); err == nil {
			v.SetInt(int64(z))
		}
	case *Duration:
		var d Duration
		if d, err = parseDuration(s); err == nil {
			v.SetInt(int64(d))
		}
	case *string:
		if n.Tag == "!!null" {
			s = ""
		}
		v.SetString(s)
	case *int:
		var i int64
		if i, err = strconv.ParseInt(s, 10, 64); err != nil {
			err = fmt.Errorf("%q is not a whole number", s)
		} else {
			v.SetInt(i)
		}
	case *float64:
		var x float64
		if x, err = strconv.ParseFloat(s, 64); err != nil {
			err = fmt.Errorf("%q is not a number", s)
		} else {
			v.SetFloat(x)
		}
	case *bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			err = fmt.Errorf("%q is not true or false", s)
		}
	default:
		err = fmt.Errorf("unsupported setting type %s", v.Type())
	}
	if err != nil {
		return l.errorf(n, key, "%v", err)
	}
	return l.check(n, v, f, key)
}

// structs fills a list of sections; an element type with a fromScalar
// method also takes a single value per entry (auth.users' name:password).
func (l loader) structs(n *yaml.Node, v reflect.Value, key string) error {
	if n.Kind != yaml.SequenceNode {
		return l.errorf(n, key, "want a list, found %s", describe(n))
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for _, item := range n.Content {
		e := reflect.New(v.Type().Elem())
		if s, ok := e.Interface().(interface{ fromScalar(string) error }); ok && item.Kind == yaml.ScalarNode {
			if err := s.fromScalar(item.Value); err != nil {
				return l.errorf(item, key, "%v", err)
			}
			if err := l.validate(item, e.Elem(), key); err != nil {
				return err
			}
		} else if err := l.object(item, e.Elem(), key); err != nil {
			return err
		}
		out = reflect.Append(out, e.Elem())
	}
	v.Set(out)
	return nil
}

// check applies a field's min, max, enum, nonempty and file tags.
func (l loader) check(n *yaml.Node, v reflect.Value, f reflect.StructField, key string) error {
	if f.Tag.Get("file") == "true" && v.String() != "" {
		if _, err := os.ReadFile(v.String()); err != nil {
			return l.errorf(n, key, "cannot read it: %v", err)
		}
	}
	if enum := f.Tag.Get("enum"); enum != "" && !slices.Contains(strings.Split(enum, ","), v.String()) {
		return l.errorf(n, key, "%q is not one of %s", v.String(), strings.ReplaceAll(enum, ",", ", "))
	}
	if f.Tag.Get("nonempty") == "true" && v.String() == "" {
		return l.errorf(n, key, "must not be empty")
	}
	if m := f.Tag.Get("min"); m != "" {
		min, _ := strconv.ParseFloat(m, 64)
		var x float64
		switch v.Kind() {
		case reflect.Float64:
			x = v.Float()
		default:
			x = float64(v.Int())
		}
		if x < min {
			return l.errorf(n, key, "%s is below the minimum of %s", n.Value, describeMin(v, m))
		}
	}
	if m := f.Tag.Get("max"); m != "" {
		max, _ := strconv.ParseInt(m, 10, 64)
		if v.Int() > max {
			return l.errorf(n, key, "%s is above the maximum of %s", n.Value, describeMin(v, m))
		}
	}
	return nil
}

func describeMin(v reflect.Value, m string) string {
	switch v.Interface().(type) {
	case Size:
		n, _ := strconv.ParseInt(m, 10, 64)
		return Size(n).String()
	case Duration:
		n, _ := strconv.ParseInt(m, 10, 64)
		return Duration(n).String()
	}
	return m
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

// suggest finds the known key a mistyped one most likely meant.
func suggest(key string, names []string) string {
	best, bestDist := "", 3
	for _, n := range names {
		if strings.EqualFold(n, key) {
			return n
		}
		if d := distance(strings.ToLower(key), strings.ToLower(n)); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
