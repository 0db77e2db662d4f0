"""Layer 2: sans-IO protocol cores. Fed bytes and ``now``; never touch sockets or clocks."""
