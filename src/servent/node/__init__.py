"""Layer 5: the Node, composing every part behind one async API."""
