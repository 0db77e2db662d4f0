"""Layer 6 (front end): the daemon with its HTTP API and web UI."""
