"""Pure decisions and generators: no I/O, no clients; the clock is always a parameter."""
