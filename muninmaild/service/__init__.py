"""The service: lifecycle, composition root, reload, membership, systemd and logging."""
