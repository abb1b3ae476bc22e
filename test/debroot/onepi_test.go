package debroot

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/glowcast/glowcast/test/kit/weathertest"
)

// netns is a network namespace of its own with loopback up: the root's
// Mosquitto listens on 1883 there, as on a Pi, whatever this machine runs.
type netns struct{ name string }

func newNetns(t *testing.T) netns {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	n := netns{"glowcast-" + hex.EncodeToString(b)}
	for _, args := range [][]string{{"netns", "add", n.name}, {"-n", n.name, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	return n
}

// listen opens a TCP listener on the namespace's loopback. A socket
// stays in the namespace it was made in, so this process serves it from
// any thread.
func (n netns) listen() (net.Listener, error) {
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine instead of
		// going back to the pool in the other namespace.
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, fmt.Errorf("setns %s: %w", n.name, err)}
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ch <- res{l, err}
	}()
	r := <-ch
	return r.l, r.err
}

// shIn runs script in the root inside the namespace, with /proc mounted
// (in ip netns exec's own mount namespace, gone when it ends).
func (r *root) shIn(n netns, script string) (string, error) {
	cmd := exec.Command("ip", "netns", "exec", n.name, "/bin/sh", "-ec",
		`mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -ec "$2"`, "sh", r.dir, script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8", "HOME=/root"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onePiServices does what systemd does for the three units on a Pi, which
// the root has no systemd to do: Debian's mosquitto.service (its
// ExecStartPre directories, then the broker as root, dropping to user
// mosquitto), then each glowcast unit's StateDirectory= and User= with
// its ExecStart. It waits until the device has temperatures from the
// agent, then stops all three.
const onePiServices = `
mkdir -m 740 -p /var/log/mosquitto /run/mosquitto
chown mosquitto /var/log/mosquitto /run/mosquitto
install -d -o glowcast -g glowcast -m 0700 /var/lib/glowcast
install -d -o glowcast-agent -g glowcast-agent -m 0700 /var/lib/glowcast-agent
m= a= d=
trap 'kill $m $a $d 2>/dev/null || true; wait' EXIT
/usr/sbin/mosquitto -c /etc/mosquitto/mosquitto.conf & m=$!
i=0
until grep -q 'listen socket on port 1883' /var/log/mosquitto/mosquitto.log 2>/dev/null; do
	i=$((i+1)); [ $i -lt 100 ] || { echo 'mosquitto is not listening'; cat /var/log/mosquitto/mosquitto.log; exit 1; }
	sleep 0.1
done
if mosquitto_pub -h 127.0.0.1 -i anonymous -t glowcast/v1/x/device/ready -m x 2>/dev/null; then
	echo 'ANONYMOUS ACCEPTED'
fi
runuser -u glowcast-agent -- /usr/bin/glowcast-agent -config /etc/glowcast/agent.yaml --weather-url "$WEATHER" >/tmp/agent.log 2>&1 & a=$!
runuser -u glowcast -- /usr/bin/glowcastd -config /etc/glowcast/glowcastd.yaml >/tmp/device.log 2>&1 & d=$!
i=0
until [ -s /var/lib/glowcast/temps.json ] && [ -s /var/lib/glowcast-agent/devices/shelf.json ]; do
	i=$((i+1))
	if [ $i -ge 600 ]; then
		echo 'the device got no temperatures in 60 s'
		echo '--- mosquitto'; cat /var/log/mosquitto/mosquitto.log
		echo '--- agent'; cat /tmp/agent.log
		echo '--- device'; cat /tmp/device.log
		exit 1
	fi
	sleep 0.1
done
echo served
`

// TestOnePiLocal: the documented one-Pi set-up, command by command:
// Mosquitto and both packages installed with apt, glowcastd init -local,
// Mosquitto restarted and both services enabled. Mosquitto then runs from
// the written configuration and takes the agent and the device, each with
// its own password, and the device gets its forecast.
func TestOnePiLocal(t *testing.T) {
	t.Parallel()
	r := newRoot(t)
	out := r.sh("apt-get install -y --no-install-recommends -o APT::Sandbox::User=root mosquitto " +
		r.copyIn(devicePkg.name, newVersion) + " " + r.copyIn(agentPkg.name, newVersion))
	if !strings.Contains(out, "sudo glowcastd init -local -force") {
		t.Errorf("the device package's postinst does not name the one-Pi set-up:\n%s", out)
	}
	r.calls()

	out = r.sh("glowcastd init -local -force -yes -device-id shelf -led none -location 52.52,13.40")
	for _, want := range []string{"systemctl restart mosquitto", "systemctl enable --now glowcast-agent glowcastd"} {
		if !strings.Contains(out, want) {
			t.Errorf("init -local does not say %q:\n%s", want, out)
		}
		r.sh(want)
	}
	if calls := r.calls(); !contains(calls, "systemctl restart mosquitto") || !contains(calls, "systemctl enable --now glowcast-agent glowcastd") {
		t.Errorf("systemctl calls %q", calls)
	}

	for _, f := range []struct{ path, want string }{
		{"/etc/glowcast/glowcastd-mqtt-password", "640 root:glowcast"},
		{"/etc/glowcast/agent-mqtt-password", "640 root:glowcast-agent"},
		{"/etc/mosquitto/glowcast.passwd", "640 root:mosquitto"},
		{"/etc/mosquitto/glowcast.acl", "644 root:root"},
		{"/etc/mosquitto/conf.d/glowcast.conf", "644 root:root"},
		{"/etc/glowcast/glowcastd.yaml", "644 root:root"},
		{"/etc/glowcast/agent.yaml", "644 root:root"},
	} {
		if got := strings.TrimSpace(r.sh("stat -c '%a %U:%G' " + f.path)); got != f.want {
			t.Errorf("%s: %s, want %s", f.path, got, f.want)
		}
	}
	// Each service reads its own password and not the other's.
	for _, c := range []struct{ user, file string }{{"glowcast", "glowcastd-mqtt-password"}, {"glowcast-agent", "agent-mqtt-password"}} {
		if _, err := r.try("runuser -u " + c.user + " -- cat /etc/glowcast/" + c.file); err != nil {
			t.Errorf("%s cannot read its password file %s: %v", c.user, c.file, err)
		}
		for _, other := range []string{"glowcastd-mqtt-password", "agent-mqtt-password"} {
			if other == c.file {
				continue
			}
			if _, err := r.try("runuser -u " + c.user + " -- cat /etc/glowcast/" + other); err == nil {
				t.Errorf("%s can read the other identity's %s", c.user, other)
			}
		}
	}

	ns := newNetns(t)
	l, err := ns.listen()
	if err != nil {
		t.Fatal(err)
	}
	weather := weathertest.NewOn(l)
	defer weather.Close()
	out, err = r.shIn(ns, "export WEATHER=http://"+l.Addr().String()+"\n"+onePiServices)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "served") {
		t.Fatalf("the one-Pi services: %v\n%s", err, out)
	}
	if strings.Contains(out, "ANONYMOUS ACCEPTED") {
		t.Errorf("the written Mosquitto configuration accepts anonymous clients")
	}
	if weather.Total() == 0 {
		t.Errorf("the agent never asked for the weather")
	}
	log := r.sh("cat /var/log/mosquitto/mosquitto.log")
	for _, who := range []string{"u'shelf'", "u'glowcast-agent'"} {
		if !strings.Contains(log, who) {
			t.Errorf("Mosquitto log shows no client %s:\n%s", who, log)
		}
	}
	for _, f := range []struct{ path, want string }{
		{"/var/lib/glowcast/temps.json", "glowcast:glowcast"},
		{"/var/lib/glowcast-agent/devices/shelf.json", "glowcast-agent:glowcast-agent"},
	} {
		if got := strings.TrimSpace(r.sh("stat -c '%U:%G' " + f.path)); got != f.want {
			t.Errorf("%s owned by %s, want %s", f.path, got, f.want)
		}
	}
}
