"""The bundled demo: sample mail and the configuration `make demo` uses."""
