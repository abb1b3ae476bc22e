// Package fielddoc runs the commands of docs/FIELD-TEST.md as processes,
// offline, against local servers and the shipped configurations, so the
// guide a new user follows cannot drift from the programs.
package fielddoc
