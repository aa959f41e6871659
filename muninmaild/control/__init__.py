"""The control socket: where it comes from and who may use it (listener), the connections and
their limits (server), and what each command does (commands, views)."""
