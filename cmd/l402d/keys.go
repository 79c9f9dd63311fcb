package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/l402d/l402d/plugin"
)

// minEnvKeyLen is the shortest key accepted from an environment variable,
// the same floor as a key file's.
const minEnvKeyLen = 16

// keyEnvFlags name environment variables that hold the producer or admin
// key, for platforms that hand an app a secret that way (Umbrel's
// $APP_PASSWORD with deterministicPassword: true, as lightning-terminal's
// --uipassword_env does). The variable's value is the key; its name is
// the flag's value.
func keyEnvFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewStringFlag(&cli.StringFlag{Name: "api-key-env", EnvVars: []string{"L402D_API_KEY_ENV"},
			Usage: "take the producer key (X-API-Key) from the environment variable `NAME` instead of <datadir>/api.key (at least 16 characters)"}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "admin-key-env", EnvVars: []string{"L402D_ADMIN_KEY_ENV"},
			Usage: "take the admin key from the environment variable `NAME` instead of <datadir>/admin.key (at least 16 characters), e.g. APP_PASSWORD on Umbrel"}),
	}
}

// applyKeyEnvFlags reads the keys the flags point at into cfg.
func applyKeyEnvFlags(c *cli.Context, cfg *plugin.Config) error {
	var err error
	if cfg.APIKey, err = keyFromEnv("api-key-env", c.String("api-key-env")); err != nil {
		return err
	}
	cfg.AdminKey, err = keyFromEnv("admin-key-env", c.String("admin-key-env"))
	return err
}

// keyFromEnv returns the key held by the environment variable name, ""
// when name is empty.
func keyFromEnv(flag, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	v, ok := os.LookupEnv(name)
	key := strings.TrimSpace(v)
	switch {
	case !ok:
		return "", fmt.Errorf("--%s %s: the environment variable %s is not set", flag, name, name)
	case len(key) < minEnvKeyLen:
		return "", fmt.Errorf("--%s %s: the key in %s has %d characters; it needs at least %d", flag, name, name, len(key), minEnvKeyLen)
	}
	return key, nil
}
