"""One module per muninctl command; each exposes `command` (or several, like pause/resume)."""
