"""Layer 4: asyncio I/O drivers that move bytes between sockets and protocol cores."""
