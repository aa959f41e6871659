"""Model backends: one structured request per message returns summary, flags and to-dos."""
