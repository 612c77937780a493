"""Files shipped with the package: systemd units (`gfs install-units` puts them in place)."""
