"""Synced shares are remembered in the real sqlite state across a restart."""

from __future__ import annotations

from pathlib import Path

from servent.codec.share_key import read_secret_of
from servent.node.state import StateStore
from servent.node.sync_records import SyncShare, load_shares, save_shares


def test_shares_survive_a_restart(tmp_path: Path) -> None:
    owner = SyncShare("a" * 16, "owner", "/x", b"k" * 32, seed=b"s" * 32, seq=4,
                      read_secret=read_secret_of(b"s" * 32),
                      info_hash=b"i" * 20, torrent_id="t", signature="sig", published=True,
                      published_at=12.5)  # fmt: skip
    member = SyncShare("b" * 16, "read_only", "/y", b"p" * 32, seq=2, read_secret=b"r" * 32,
                       listing={("sub", "f.txt"): b"d" * 32, ("g",): b"e" * 32},
                       pending_id="n", pending_seq=3, pending_hash=b"h" * 20)  # fmt: skip
    store = StateStore(tmp_path)
    assert load_shares(store) == {}
    save_shares(store, {owner.id: owner, member.id: member})
    store.close()
    store = StateStore(tmp_path)
    loaded = load_shares(store)
    store.close()
    assert loaded == {owner.id: owner, member.id: member}


def test_a_writer_saved_without_its_read_secret_gets_it_back(tmp_path: Path) -> None:
    writer = SyncShare("c" * 16, "read_write", "/z", b"k" * 32, seed=b"s" * 32)
    store = StateStore(tmp_path)
    save_shares(store, {writer.id: writer})  # as an older node saved it: no read secret
    assert load_shares(store)[writer.id].read_secret == read_secret_of(b"s" * 32)
    store.close()
