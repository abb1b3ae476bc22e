// Package layering checks the import rules that make the tree show the
// design: layers only point down, product code never links a tool or a test
// rig, and the agent never links hardware drivers.
package layering

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/glowcast/glowcast"

type pkg struct {
	ImportPath string
	Imports    []string // of the non-test files
}

// packages lists every package of the module with its non-test imports.
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var ps []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		ps = append(ps, p)
	}
	if len(ps) < 20 {
		t.Fatalf("go list found %d packages; the module has more", len(ps))
	}
	return ps
}

// in reports whether the import path p is one of the module's folders
// dirs or below one of them.
func in(p string, dirs ...string) bool {
	rel, ok := strings.CutPrefix(p, mod+"/")
	if !ok {
		return false
	}
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// std reports whether p is in the standard library.
func std(p string) bool { return !strings.Contains(strings.Split(p, "/")[0], ".") }

// Kinds of code, by where they live.
var (
	// tools are programs that live with their command.
	tools = []string{"cmd/glowcast/sim", "cmd/glowcast/demo", "cmd/glowcast-bench/bench"}
	// libraries serve both programs and know neither.
	libraries = []string{"internal", "protocol", "mqttmsg", "ledstrip"}
)

type rule struct {
	name string
	// applies selects the importing packages the rule is about.
	applies func(p string) bool
	// banned reports whether importing imp breaks the rule.
	banned func(imp string) bool
}

var rules = []rule{
	{
		name:    "product code never imports a test rig",
		applies: func(p string) bool { return !in(p, "test") && !in(p, tools...) },
		banned:  func(imp string) bool { return in(imp, "test") || imp == "testing" },
	},
	{
		name:    "product libraries never import a command or a tool",
		applies: func(p string) bool { return !in(p, "cmd", "test") },
		banned:  func(imp string) bool { return in(imp, "cmd") },
	},
	{
		name:    "a command imports no other command",
		applies: func(p string) bool { return in(p, "cmd") },
		banned:  func(imp string) bool { return in(imp, "cmd") && !in(imp, tools...) },
	},
	{
		name:    "libraries never import the device or the agent",
		applies: func(p string) bool { return in(p, libraries...) },
		banned:  func(imp string) bool { return in(imp, "device", "agent") },
	},
	{
		name:    "the device never imports the agent",
		applies: func(p string) bool { return in(p, "device") },
		banned:  func(imp string) bool { return in(imp, "agent") },
	},
	{
		name:    "the agent never imports the device or a strip backend",
		applies: func(p string) bool { return in(p, "agent") },
		banned:  func(imp string) bool { return in(imp, "device", "ledstrip/backend") },
	},
	{
		name:    "protocol is the bottom layer: the standard library only",
		applies: func(p string) bool { return in(p, "protocol") },
		banned:  func(imp string) bool { return !std(imp) },
	},
	{
		name:    "suites are leaves: nothing imports a suite",
		applies: func(p string) bool { return true },
		banned:  func(imp string) bool { return in(imp, "test") && !in(imp, "test/kit") },
	},
	{
		name:    "tools can use the kit's runner, watcher and metrics reader: they do not need testing",
		applies: func(p string) bool { return in(p, "test/kit/proc", "test/kit/mqttwatch", "test/kit/metrics") },
		banned:  func(imp string) bool { return imp == "testing" },
	},
	{
		name:    "the colour model knows no hardware",
		applies: func(p string) bool { return p == mod+"/ledstrip" },
		banned:  func(imp string) bool { return strings.HasPrefix(imp, "periph.io/") || in(imp, "ledstrip/backend") },
	},
}

func TestImportRules(t *testing.T) {
	ps := packages(t)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			checked := 0
			for _, p := range ps {
				if !r.applies(p.ImportPath) {
					continue
				}
				checked++
				for _, imp := range p.Imports {
					if r.banned(imp) {
						t.Errorf("%s imports %s", p.ImportPath, imp)
					}
				}
			}
			if checked == 0 {
				t.Error("the rule applies to no package: its paths are stale")
			}
		})
	}
}

// TestRulesRefuse keeps the rules honest: each import below breaks the
// design and must be refused by a rule; each allowed one must pass all.
func TestRulesRefuse(t *testing.T) {
	for _, tc := range []struct {
		from, imp string
		refused   bool
	}{
		{"device", "./test/kit/mqtttest", true},
		{"agent", "testing", true},
		{"internal/brokerconf", "./agent", true},
		{"mqttmsg", "./device", true},
		{"agent/statuspage", "./ledstrip/backend", true},
		{"ledstrip", "periph.io/x/conn/v3/spi", true},
		{"protocol", "./mqttmsg", true},
		{"protocol", "go.yaml.in/yaml/v3", true},
		{"device", "./cmd/glowcast/sim", true},
		{"cmd/glowcastd", "./cmd/glowcast-agent", true},
		{"device/doctor", "./agent/weather", true},
		{"agent/statuspage", "./ledstrip", false},
		{"device", "./ledstrip/backend", false},
		{"mqttmsg", "./protocol", false},
		{"cmd/glowcast", "./cmd/glowcast/sim", false},
		{"cmd/glowcast-bench/bench", "./test/kit/mqtttest", false},
		{"test/chaos", "./agent", false},
		{"test/chaos", "./test/e2e", true},
		{"test/kit/proc", "testing", true},
		{"test/kit/mqtttest", "testing", false},
	} {
		// "./" marks a package of this module.
		from, imp := mod+"/"+tc.from, tc.imp
		if rel, ok := strings.CutPrefix(imp, "./"); ok {
			imp = mod + "/" + rel
		}
		var by []string
		for _, r := range rules {
			if r.applies(from) && r.banned(imp) {
				by = append(by, r.name)
			}
		}
		if got := len(by) > 0; got != tc.refused {
			t.Errorf("%s importing %s: refused by %q, want refused %v", tc.from, tc.imp, by, tc.refused)
		}
	}
}
