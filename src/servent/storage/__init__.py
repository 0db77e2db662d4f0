"""Layer 3: storage. The only code that touches payload files.

``TorrentStorage`` is the seam the torrent session uses; resume records go
through a ``ResumeStore`` (file based by default, sqlite in the daemon).
"""

from servent.storage.model import StorageMetainfo
from servent.storage.resume import FileResumeStore, MemoryResumeStore, ResumeRecord, ResumeStore
from servent.storage.torrent_storage import TorrentStorage

__all__ = [
    "FileResumeStore",
    "MemoryResumeStore",
    "ResumeRecord",
    "ResumeStore",
    "StorageMetainfo",
    "TorrentStorage",
]
