// Package debroot tests the .debs where they run: in a Debian root built
// from Debian's own packages by mmdebstrap, with dpkg and apt run inside it
// by chroot. systemctl and deb-systemd-invoke are replaced in the root by a
// shim that records each call, so the maintainer scripts' service handling
// is checked rather than carried out.
//
// The root is built once from the mirror in /etc/apt/sources.list* and
// cached as a tarball in $XDG_CACHE_HOME/glowcast (~/.cache/glowcast);
// each test unpacks its own copy. The suite needs root (chroot), and
// mmdebstrap the first time; scripts/install-test-deps installs it.
package debroot
