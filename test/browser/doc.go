// Package browser holds the tests that look at the agent's status page
// the way an operator does: in headless Chromium, comparing the pixels of
// the LED swatches in a screenshot with the colours the device itself
// reports through its jsonl LED backend.
//
// The tests need Debian's chromium (/usr/bin/chromium, or $CHROMIUM); they
// fail without it, since CI installs it.
package browser
