// Package packaging checks what `make dist` and `make deb` produce the way a
// Pi owner meets it: the ARM binaries start under qemu-user on the CPUs of
// the Pi family, the .deb packages carry the right files, conffile and
// scripts, and the amd64 packages install and remove cleanly into a
// scratch root with dpkg --root. It also checks the example configs and
// the first-run message of glowcastd.
//
// It needs make, dpkg and qemu-user (Debian's qemu-user-static or
// qemu-user); the tests fail without them, since CI installs them.
package packaging
