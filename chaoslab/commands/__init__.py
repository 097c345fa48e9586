"""Command-line sub-commands, one module per family, imported lazily by :mod:`chaoslab.cli`."""
