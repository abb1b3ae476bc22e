package chaos

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/glowcast/glowcast/test/kit/binaries"
)

// The defaults are the short campaign that `make test` runs (well under
// three minutes); `make chaos` and `make soak` pass bigger numbers.
var (
	seed     = flag.Uint64("chaos.seed", 0, "schedule seed; 0 picks one from the clock (printed, for replay)")
	rounds   = flag.Int("chaos.rounds", 0, "faults to inject; 0 means each fault once")
	devices  = flag.Int("chaos.devices", 3, "device processes")
	interval = flag.Duration("chaos.interval", time.Second, "the agent's forecast interval")
	long     = flag.Bool("chaos.long", false, "include the faults that take a minute each (half-open links, hanging weather)")
	fleet    = flag.Int("chaos.fleet", 0, "simulated devices for the fleet faults (fleet-agent-kill); 0 leaves them out")
	only     = flag.String("chaos.faults", "", "comma-separated faults to draw from; empty means all")
	soakFor  = flag.Duration("soak.duration", 20*time.Second, "soak length")
	soakDevs = flag.Int("soak.devices", 5, "soak device processes")
	soakIvl  = flag.Duration("soak.interval", time.Second, "soak forecast interval")
	every    = flag.Duration("soak.every", time.Minute, "how often the soak prints resources")
)

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	// The binaries are the release ones: their mains take a clock moved by
	// $GLOWCAST_TEST_CLOCK_SKEW_FILE (internal/clock), no special build.
	binaries.Main(m, &binDir,
		// toxiproxy 2.5's pass-through stage can be left blocked sending a
		// chunk that was in flight when its link closed: nothing reads it
		// any more. It is the test proxy's goroutine, not a program's.
		goleak.IgnoreTopFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"))
}

func pickSeed() uint64 {
	if *seed != 0 {
		return *seed
	}
	return uint64(time.Now().UnixNano())
}

func faultList() []string {
	if *only == "" {
		return nil
	}
	return strings.Split(*only, ",")
}

func TestCampaign(t *testing.T) {
	rep := Run(t, Config{
		Seed: pickSeed(), Devices: *devices, Interval: *interval, Rounds: *rounds,
		Faults: faultList(), Long: *long, BinDir: binDir, Out: os.Stdout, Fleet: *fleet,
	})
	injected := 0
	for _, r := range rep.Rows {
		injected += r.Injected
		if r.Recovered != r.Injected {
			t.Errorf("%s: recovered %d of %d", r.Fault, r.Recovered, r.Injected)
		}
	}
	if injected == 0 {
		t.Errorf("injected %d faults, want some", injected)
	}
}

func TestSoak(t *testing.T) {
	rep := Run(t, Config{
		Seed: pickSeed(), Devices: *soakDevs, Interval: *soakIvl, Duration: *soakFor,
		Faults: faultList(), Long: *long, BinDir: binDir, Out: os.Stdout, Every: *every,
	})
	if len(rep.Samples) < 2 {
		t.Errorf("got %d resource samples, want at least 2", len(rep.Samples))
	}
}
