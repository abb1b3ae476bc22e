// Package mqttmsg is a small messaging layer on MQTT 3.1.1 (paho) for two
// kinds of programs that talk in named messages: a node (one device) and a
// hub (one agent serving many nodes).
//
// It owns the broker connection and guarantees the ordering that makes the
// pattern safe:
//
//   - Handlers are registered before Connect; on every (re)connect the client
//     subscribes to all of them first, then publishes its retained presence
//     (birth), then runs the OnUp hooks (where a node says "ready"). So no peer
//     can send a message that arrives before its handler exists.
//   - Presence is a retained status topic with a last will of the same shape
//     (the caller's Status renders and reads it). The client watches its own
//     status topic and re-publishes online when a will overwrote it while it
//     is connected (a late will of an old connection, or a broker publishing
//     wills as it shuts down), and reports when a newer process with the
//     same identity took the topic over. A handler whose filter covers the
//     status topic sees its messages too: a previous process's will there
//     says that process has ended.
//   - Messages over MaxPayload are dropped before any handler sees them.
//   - A plain-TCP connection is read through a buffer and its small writes
//     are sent together, one system call per burst (conn.go); a send that
//     does not complete within ConnectTimeout fails the connection.
//
// Topics of named messages are <root>/<node>/<side>/<name>: a node publishes
// under its own side and receives under the hub's side. Names and node ids
// pass protocol's one rule (ValidName, ValidID) both ways. The package knows
// nothing of what the messages mean: payloads, presence included, are the
// caller's protocol's.
package mqttmsg
