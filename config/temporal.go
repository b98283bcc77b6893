package config

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"
)

// ClientOptions builds Temporal client options the Temporal way: an
// envconfig profile (TEMPORAL_PROFILE, temporal.toml) and TEMPORAL_ADDRESS /
// TEMPORAL_NAMESPACE variables, then the flags given (non-empty wins), then
// this config's temporal section, then localhost:7233 and "default".
func (c *Config) ClientOptions(addressFlag, namespaceFlag, profile string) (client.Options, error) {
	opts, err := envconfig.LoadClientOptions(envconfig.LoadClientOptionsRequest{ConfigFileProfile: profile})
	if err != nil {
		return opts, fmt.Errorf("load Temporal client profile: %w", err)
	}
	switch {
	case addressFlag != "":
		opts.HostPort = addressFlag
	case opts.HostPort == "" && c != nil && c.Temporal.Address != "":
		opts.HostPort = c.Temporal.Address
	case opts.HostPort == "":
		opts.HostPort = client.DefaultHostPort
	}
	switch {
	case namespaceFlag != "":
		opts.Namespace = namespaceFlag
	case opts.Namespace == "" && c != nil && c.Temporal.Namespace != "":
		opts.Namespace = c.Temporal.Namespace
	case opts.Namespace == "":
		opts.Namespace = client.DefaultNamespace
	}
	return opts, nil
}
