"""Layer 1: codecs and value objects. Pure functions, no I/O."""
