// Package geo owns where the agent believes each device is: the order of
// the location sources, the clients of the WiFi and IP geolocation
// services, and the payload of the device's "wifi" message.
//
// # Order
//
// A device's location is the first of:
//
//  1. "config": its static lat/lon in the agent's configuration;
//  2. "device": the location hint in its ready message (its own config);
//  3. "wifi": its access point scan, resolved by a service speaking the
//     Google Geolocation API (BeaconDB, or Google with a key);
//  4. "ip": the public IP address the device reported in its wifi message,
//     resolved by an ip-api.com-style service;
//  5. "default": the agent's --location.
//
// A step without input or whose service fails is skipped, with a log line
// saying why; step 5 always answers.
//
// # The wifi message
//
// The device publishes glowcast/v1/<device>/device/wifi (not retained),
// once per boot after ready, when scanning is enabled:
//
//	{"access_points": [{"bssid": "a4:2b:b0:c1:d2:e3", "signal_dbm": -61, "ssid": "home"}],
//	 "public_ip": "203.0.113.7"}
//
// access_points holds at most 100 entries; bssid is a MAC address in hex
// with colons, signal_dbm an integer in -127…0, ssid optional (at most 32
// bytes). Networks whose SSID contains "_nomap" or "_optout" and BSSIDs
// that are locally administered (randomised, hotspots) are left out by the
// device and dropped again by the agent. public_ip is optional.
//
// # IP geolocation
//
// MQTT does not tell the agent a device's address, and the broker may sit
// anywhere, so the agent never guesses it: step 4 runs only when the device
// put public_ip in its wifi message (from its own configuration), and is
// skipped otherwise. Private, loopback, link-local and shared (CGNAT)
// addresses are refused with a message saying so.
//
// # When
//
// The result is saved in the agent's state (Saved) with the boot_id and a
// key of the configuration it came from, and is resolved again only on a
// new boot_id, a configuration change, or the first scan of a boot that
// could improve on an "ip" or "default" result.
//
// The package does no MQTT and keeps no state of its own beyond the IP
// service's rate-limit window.
package geo
