"""Layer 3: storage. The only code that touches payload files."""
