"""Pure renderers of every text the program writes: stack files, the Caddyfile, cloud-init, registry and SSH
configuration."""
