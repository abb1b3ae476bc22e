package doccheck

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/glowcast/glowcast/agent"
	"github.com/glowcast/glowcast/device"
)

const root = "../.."

// program is one binary: its flags and its config file's keys.
type program struct {
	name   string
	flags  *flag.FlagSet
	keys   []string // dotted YAML paths
	config string   // the shipped example config
}

func programs() []program {
	dfs := flag.NewFlagSet("glowcastd", flag.ContinueOnError)
	dc := device.Default()
	dc.Bind(dfs)
	for _, n := range []string{"config", "off", "version"} {
		dfs.Bool(n, false, "")
	}
	afs := flag.NewFlagSet("glowcast-agent", flag.ContinueOnError)
	ac := agent.Default()
	ac.Bind(afs)
	for _, n := range []string{"config", "version"} {
		afs.Bool(n, false, "")
	}
	return []program{
		{"glowcastd", dfs, yamlKeys(reflect.TypeOf(dc), ""), "configs/glowcastd.yaml"},
		{"glowcast-agent", afs, yamlKeys(reflect.TypeOf(ac), ""), "configs/agent.yaml"},
	}
}

// yamlKeys lists the YAML paths of a config struct; maps and slices of
// structs count as their element's keys under the map's key.
func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if tag == "" && f.Anonymous && ft.Kind() == reflect.Struct {
			out = append(out, yamlKeys(ft, prefix)...)
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		key := prefix + tag
		out = append(out, key)
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" && !hasUnmarshaler(ft) {
			out = append(out, yamlKeys(ft, key+".")...)
		}
	}
	return out
}

func hasUnmarshaler(t reflect.Type) bool {
	_, ok := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return ok
}

// docs is the text of README.md, docs/*.md and the example configs.
func docs(t *testing.T) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "configs", "glowcastd.yaml"), filepath.Join(root, "configs", "agent.yaml"))
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		out[rel] = string(b)
	}
	return out
}

// TestEveryFlagDocumented: each flag appears in the docs as -name or
// --name, and each config key as key: (in an example config or a YAML
// block) or `a.b.key`.
func TestEveryFlagAndKeyDocumented(t *testing.T) {
	all := ""
	for _, s := range docs(t) {
		all += s + "\n"
	}
	for _, p := range programs() {
		p.flags.VisitAll(func(f *flag.Flag) {
			if !regexp.MustCompile(`(^|[^\w-])--?` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(all) {
				t.Errorf("%s: flag -%s is in no doc (README.md, docs/, configs/)", p.name, f.Name)
			}
		})
		for _, k := range p.keys {
			// A device's own weather settings are the weather.* keys.
			k := strings.TrimPrefix(k, "devices.")
			leaf := k[strings.LastIndex(k, ".")+1:]
			if !strings.Contains(all, k) && !regexp.MustCompile(`(?m)(^[\s#-]*|[{,]\s*)`+regexp.QuoteMeta(leaf)+`:`).MatchString(all) {
				t.Errorf("%s: config key %s is in no doc", p.name, k)
			}
		}
	}
}

// flagRef finds glowcastd and glowcast-agent command lines in docs.
var flagRef = regexp.MustCompile(`(?m)(?:^[ \t]*|\x60|(?:sudo|bin/|\$)[ \t]*)(?:/usr/bin/|bin/)?(glowcastd|glowcast-agent)((?:[ \t]+[^\s\x60|;&#]+)+)`)

// TestDocumentedFlagsExist: every -flag given to glowcastd or
// glowcast-agent in a doc is one the program has.
func TestDocumentedFlagsExist(t *testing.T) {
	progs := map[string]program{}
	for _, p := range programs() {
		progs[p.name] = p
	}
	var bad []string
	for file, text := range docs(t) {
		for _, m := range flagRef.FindAllStringSubmatch(text, -1) {
			p := progs[m[1]]
			args := strings.Fields(m[2])
			if len(args) > 0 && regexp.MustCompile(`^[a-z]+$`).MatchString(args[0]) {
				continue // a subcommand (init, doctor, version…) has flags of its own
			}
			for _, a := range args {
				if !strings.HasPrefix(a, "-") {
					continue
				}
				name := strings.TrimLeft(a, "-")
				name, _, _ = strings.Cut(name, "=")
				if name == "" || name == "h" || name == "help" {
					continue
				}
				if p.flags.Lookup(name) == nil {
					bad = append(bad, file+": "+m[1]+" -"+name)
				}
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("documented flag does not exist: %s", b)
	}
}
