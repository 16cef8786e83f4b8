package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cratestream/cratestream/internal/testutil"
)

// TestOpenAPIMatchesRoutes checks schemas/openapi.yaml against Routes():
// the same (method, path) pairs, every path parameter declared, every
// operation with an id and responses, every $ref resolvable.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "schemas", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(src))
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	top := doc.(map[string]any)
	if v, _ := top["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %v", top["openapi"])
	}
	paths, ok := top["paths"].(map[string]any)
	if !ok {
		t.Fatal("no paths")
	}
	var refs []string
	collectRefs(doc, &refs)
	for _, r := range refs {
		if _, err := resolve(top, r); err != nil {
			t.Errorf("$ref %s: %v", r, err)
		}
	}

	inDoc := map[string]bool{}
	ids := map[string]string{}
	for path, v := range paths {
		ops := v.(map[string]any)
		for method, ov := range ops {
			m := strings.ToUpper(method)
			switch m {
			case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
			default:
				continue
			}
			key := m + " " + path
			inDoc[key] = true
			op := ov.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" {
				t.Errorf("%s: no operationId", key)
			} else if prev, dup := ids[id]; dup {
				t.Errorf("operationId %s on %s and %s", id, prev, key)
			}
			ids[id] = key
			if resp, _ := op["responses"].(map[string]any); len(resp) == 0 {
				t.Errorf("%s: no responses", key)
			}
			declared := map[string]bool{}
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				pm := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					r, err := resolve(top, ref)
					if err != nil {
						continue
					}
					pm = r.(map[string]any)
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
			for _, mt := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				if !declared[mt[1]] {
					t.Errorf("%s: path parameter %s not declared", key, mt[1])
				}
			}
		}
	}
	inCode := map[string]bool{}
	for _, r := range Routes() {
		inCode[r.Method+" "+r.Path] = true
	}
	for k := range inCode {
		if !inDoc[k] {
			t.Errorf("route %s is not in schemas/openapi.yaml", k)
		}
	}
	for k := range inDoc {
		if !inCode[k] {
			t.Errorf("schemas/openapi.yaml has %s, which the gateway does not serve", k)
		}
	}
	// Public routes are exactly those with "security: []".
	for _, r := range Routes() {
		op, _ := paths[r.Path].(map[string]any)[strings.ToLower(r.Method)].(map[string]any)
		sec, has := op["security"]
		public := has && len(sec.([]any)) == 0
		if public != r.Public {
			t.Errorf("%s %s: public in code %v, in the document %v", r.Method, r.Path, r.Public, public)
		}
	}
}

func collectRefs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "$ref" {
				*out = append(*out, s)
			}
			collectRefs(c, out)
		}
	case []any:
		for _, c := range x {
			collectRefs(c, out)
		}
	}
}

func resolve(doc map[string]any, ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s is not an object", part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("no %s", part)
		}
	}
	return cur, nil
}

func TestYAMLSubset(t *testing.T) {
	src := `# comment
a: 1
b: "two: 2"
c: 'it''s'
d: [x, "y", 3]
e: {}
f:
  - g: true
    h: null
  - plain text
  -
    i: 2.5
j: |
  line one
    indented

  line three
k: value # trailing comment
"l m": x
`
	v, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(v)
	want := `map[a:1 b:two: 2 c:it's d:[x y 3] e:map[] f:[map[g:true h:<nil>] plain text map[i:2.5]] j:line one
  indented

line three
 k:value l m:x]`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{"a: 1\n  b: 2\n", "a: 1\na: 2\n", "\ta: 1\n", "a: [1, 2\n", "a: \"open\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

// parseYAML parses the subset of YAML our OpenAPI document uses: block
// mappings and sequences, plain/single/double-quoted scalars, flow
// sequences of scalars, {} and literal (|) block scalars. It is strict:
// anything else is an error, so the document cannot drift into YAML this
// test would misread. (go.mod has no YAML library.)
func parseYAML(src string) (any, error) {
	p := &yamlParser{lines: strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")}
	p.skip()
	if p.i >= len(p.lines) {
		return nil, nil
	}
	v, err := p.node(0)
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i < len(p.lines) {
		return nil, p.errf("unexpected content")
	}
	return v, nil
}

type yamlParser struct {
	lines []string
	i     int
	// override replaces the current line's indent and text (a mapping
	// that starts on a sequence item's line).
	override *struct {
		indent int
		text   string
	}
}

func (p *yamlParser) errf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.i+1, fmt.Sprintf(format, args...))
}

func isBlank(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
}

// skip moves past blank and comment lines.
func (p *yamlParser) skip() {
	if p.override != nil {
		return
	}
	for p.i < len(p.lines) && isBlank(p.lines[p.i]) {
		p.i++
	}
}

func (p *yamlParser) cur() (int, string, error) {
	if p.override != nil {
		return p.override.indent, p.override.text, nil
	}
	l := p.lines[p.i]
	t := strings.TrimLeft(l, " ")
	if strings.HasPrefix(t, "\t") {
		return 0, "", p.errf("tab in indentation")
	}
	return len(l) - len(t), strings.TrimRight(t, " "), nil
}

func (p *yamlParser) next() {
	if p.override != nil {
		p.override = nil
	}
	p.i++
}

func (p *yamlParser) node(min int) (any, error) {
	p.skip()
	if p.i >= len(p.lines) {
		return nil, p.errf("missing value")
	}
	ind, text, err := p.cur()
	if err != nil {
		return nil, err
	}
	if ind < min {
		return nil, p.errf("missing value")
	}
	if text == "-" || strings.HasPrefix(text, "- ") {
		return p.seq(ind)
	}
	return p.mapping(ind)
}

func (p *yamlParser) mapping(ind int) (any, error) {
	m := map[string]any{}
	for {
		p.skip()
		if p.i >= len(p.lines) {
			return m, nil
		}
		ci, text, err := p.cur()
		if err != nil {
			return nil, err
		}
		if ci < ind {
			return m, nil
		}
		if ci > ind {
			return nil, p.errf("unexpected indentation")
		}
		if strings.HasPrefix(text, "- ") {
			return m, nil
		}
		key, rest, err := p.splitKey(text)
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, p.errf("duplicate key %q", key)
		}
		p.next()
		switch {
		case rest == "":
			p.skip()
			if p.i < len(p.lines) {
				if ni, _, _ := p.cur(); ni > ind {
					v, err := p.node(ind + 1)
					if err != nil {
						return nil, err
					}
					m[key] = v
					continue
				}
			}
			m[key] = nil
		case rest == "|":
			m[key] = p.literal(ind)
		default:
			v, err := p.scalar(rest)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
	}
}

func (p *yamlParser) seq(ind int) (any, error) {
	var out []any
	for {
		p.skip()
		if p.i >= len(p.lines) {
			return out, nil
		}
		ci, text, err := p.cur()
		if err != nil {
			return nil, err
		}
		if ci < ind || !(text == "-" || strings.HasPrefix(text, "- ")) {
			if ci > ind {
				return nil, p.errf("unexpected indentation")
			}
			return out, nil
		}
		item := strings.TrimLeft(strings.TrimPrefix(text, "-"), " ")
		switch {
		case item == "":
			p.next()
			v, err := p.node(ind + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case p.looksLikeKey(item):
			off := ind + len(text) - len(item)
			p.override = &struct {
				indent int
				text   string
			}{off, item}
			v, err := p.mapping(off)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			v, err := p.scalar(item)
			if err != nil {
				return nil, err
			}
			p.next()
			out = append(out, v)
		}
	}
}

func (p *yamlParser) looksLikeKey(s string) bool {
	_, _, err := p.splitKey(s)
	return err == nil && !strings.HasPrefix(s, "[") && !strings.HasPrefix(s, "{")
}

func (p *yamlParser) splitKey(text string) (string, string, error) {
	if text[0] == '"' || text[0] == '\'' {
		end := strings.IndexByte(text[1:], text[0])
		if end < 0 || !strings.HasPrefix(text[end+2:], ":") {
			return "", "", p.errf("malformed key %q", text)
		}
		return text[1 : end+1], strings.TrimSpace(text[end+3:]), nil
	}
	if k, ok := strings.CutSuffix(text, ":"); ok && !strings.Contains(k, ": ") {
		return k, "", nil
	}
	k, rest, ok := strings.Cut(text, ": ")
	if !ok {
		return "", "", p.errf("want key: value, got %q", text)
	}
	return k, strings.TrimSpace(rest), nil
}

// literal reads a | block scalar below a key at indent ind.
func (p *yamlParser) literal(ind int) string {
	var lines []string
	block := -1
	for ; p.i < len(p.lines); p.i++ {
		l := p.lines[p.i]
		if strings.TrimSpace(l) == "" {
			lines = append(lines, "")
			continue
		}
		li := len(l) - len(strings.TrimLeft(l, " "))
		if li <= ind {
			break
		}
		if block < 0 {
			block = li
		}
		if li < block {
			break
		}
		lines = append(lines, l[block:])
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n") + "\n"
}

func (p *yamlParser) scalar(s string) (any, error) {
	switch s[0] {
	case '"':
		end := -1
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				end = i
				break
			}
		}
		if end < 0 {
			return nil, p.errf("unterminated string %s", s)
		}
		if err := p.trailing(s[end+1:]); err != nil {
			return nil, err
		}
		v, err := strconv.Unquote(s[:end+1])
		if err != nil {
			return nil, p.errf("string %s: %v", s, err)
		}
		return v, nil
	case '\'':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				if err := p.trailing(s[i+1:]); err != nil {
					return nil, err
				}
				return b.String(), nil
			}
			b.WriteByte(s[i])
		}
		return nil, p.errf("unterminated string %s", s)
	case '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, p.errf("unterminated flow sequence %s", s)
		}
		if err := p.trailing(s[end+1:]); err != nil {
			return nil, err
		}
		out := []any{}
		if inner := strings.TrimSpace(s[1:end]); inner != "" {
			for _, it := range strings.Split(inner, ",") {
				v, err := p.scalar(strings.TrimSpace(it))
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
		}
		return out, nil
	case '{':
		if strings.TrimSpace(s) != "{}" {
			return nil, p.errf("only empty flow mappings are supported: %s", s)
		}
		return map[string]any{}, nil
	case '|', '>', '&', '*', '!', '%', '@', '`':
		return nil, p.errf("unsupported YAML: %s", s)
	}
	if i := strings.Index(s, " #"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null", "~":
		return nil, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	if strings.Contains(s, ": ") {
		return nil, p.errf("plain scalar with \": \" (quote it): %s", s)
	}
	return s, nil
}

func (p *yamlParser) trailing(rest string) error {
	rest = strings.TrimSpace(rest)
	if rest != "" && !strings.HasPrefix(rest, "#") {
		return p.errf("unexpected %q after a value", rest)
	}
	return nil
}
