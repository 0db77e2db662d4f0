"""The daemon's HTTP API as a real subprocess: every endpoint, errors, and the token."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon
from servent.storage.torrent_creator import create_torrent

MAGNET = "magnet:?xt=urn:btih:" + "cd" * 20 + "&dn=from-magnet"
CALLED: set[tuple[str, str]] = set()


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    (folder / "docs").mkdir(parents=True)
    (folder / "big.bin").write_bytes(os.urandom(200_000))
    (folder / "docs" / "note.txt").write_bytes(b"servent " * 500)
    return folder


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("daemon-data"))
    yield running
    assert running.stop() == 0


def call(daemon: Daemon, method: str, path: str, template: str, **kw: object) -> object:
    CALLED.add((method.lower(), template))
    return daemon.ok(method, path, **kw)  # type: ignore[arg-type]


def test_files_in_the_data_dir(daemon: Daemon) -> None:
    for name in ("api-token", "daemon.json", "daemon.lock", "state.sqlite3"):
        assert stat.S_IMODE((daemon.data_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(daemon.data_dir.stat().st_mode) == 0o700
    info = json.loads((daemon.data_dir / "daemon.json").read_text())
    assert info["url"] == daemon.url
    assert (daemon.data_dir / "state.sqlite3").exists()


def test_requests_without_or_with_a_wrong_token_are_refused(daemon: Daemon) -> None:
    for token in (None, "wrong", ""):
        status, body = daemon.call("GET", "/api/torrents", token=token)
        assert status == 401
        assert "token" in body["error"]
    status, body = daemon.call("POST", "/api/torrents", {"magnet": MAGNET}, token=None)
    assert status == 401
    assert daemon.ok("GET", "/api/torrents") == []  # nothing was added


def test_status_openapi_and_settings(daemon: Daemon) -> None:
    status = call(daemon, "GET", "/api/status", "/api/status")
    assert isinstance(status, dict)
    assert status["dht_enabled"] is False
    assert status["data_dir"] == str(daemon.data_dir)
    host, port = status["listen_address"]  # the swarm engine listens for peers
    assert host == "127.0.0.1" and port > 0
    assert status["ipv6_pinhole"] is None  # on loopback nothing is asked of a router
    assert status["utp_path_mtu"] is None  # no uTP connection open
    document = call(daemon, "GET", "/api/openapi.json", "/api/openapi.json")
    assert isinstance(document, dict)
    assert document["openapi"].startswith("3.")
    settings = call(daemon, "GET", "/api/settings", "/api/settings")
    assert isinstance(settings, dict) and settings["api_host"] == "127.0.0.1"
    changed = call(
        daemon,
        "PATCH",
        "/api/settings",
        "/api/settings",
        body={"upload_rate_limit": 4096, "max_connections": 40},
    )
    assert isinstance(changed, dict)
    assert (changed["upload_rate_limit"], changed["max_connections"]) == (4096, 40)
    assert changed["restart_required"] is False
    later = daemon.ok("PATCH", "/api/settings", {"listen_port": 6999})
    assert later["restart_required"] is True
    same = daemon.ok("PATCH", "/api/settings", {"encryption": settings["encryption"]})
    assert same["restart_required"] is False
    encrypted = daemon.ok("PATCH", "/api/settings", {"encryption": "required"})
    assert encrypted["restart_required"] is True
    assert encrypted["encryption"] == settings["encryption"]  # runs with the old one until then
    # The daemon was started with --listen-port, and a flag wins over a saved value.
    assert encrypted["pending_restart"] == {"encryption": "required"}


def test_magnet_lifecycle(daemon: Daemon) -> None:
    added = call(daemon, "POST", "/api/torrents", "/api/torrents", body={"magnet": MAGNET})
    assert isinstance(added, dict)
    torrent_id = added["id"]
    assert (added["name"], added["state"]) == ("from-magnet", "metadata")
    listed = call(daemon, "GET", "/api/torrents", "/api/torrents")
    assert [t["id"] for t in listed] == [torrent_id]  # type: ignore[union-attr]
    one = call(daemon, "GET", f"/api/torrents/{torrent_id}", "/api/torrents/{id}")
    assert one["magnet"].startswith("magnet:?xt=urn:btih:" + "cd" * 20)  # type: ignore[index]
    paused = call(daemon, "POST", f"/api/torrents/{torrent_id}/pause", "/api/torrents/{id}/pause")
    assert paused["paused"] is True and paused["state"] == "paused"  # type: ignore[index]
    resumed = call(
        daemon, "POST", f"/api/torrents/{torrent_id}/resume", "/api/torrents/{id}/resume"
    )
    assert resumed["paused"] is False  # type: ignore[index]
    assert (
        call(daemon, "GET", f"/api/torrents/{torrent_id}/peers", "/api/torrents/{id}/peers") == []
    )
    assert (
        call(daemon, "GET", f"/api/torrents/{torrent_id}/files", "/api/torrents/{id}/files") == []
    )
    limited = call(
        daemon,
        "PUT",
        f"/api/torrents/{torrent_id}/limits",
        "/api/torrents/{id}/limits",
        body={"download_rate_limit": 1000},
    )
    assert limited["id"] == torrent_id  # type: ignore[index]
    removed = call(daemon, "DELETE", f"/api/torrents/{torrent_id}", "/api/torrents/{id}")
    assert removed == {
        "removed": torrent_id,
        "data_deleted": False,
        "reason": None,
        "deleted_files": 0,
        "kept_files": 0,
    }
    assert daemon.ok("GET", "/api/torrents") == []


def test_share_add_torrent_and_priorities(daemon: Daemon, tmp_path: Path) -> None:
    shared_folder = _folder(tmp_path, "shared")
    shared = call(daemon, "POST", "/api/shares", "/api/shares", body={"path": str(shared_folder)})
    assert shared["magnet"].startswith("magnet:?xt=urn:btih:")  # type: ignore[index]
    shares = call(daemon, "GET", "/api/shares", "/api/shares")
    assert [s["path"] for s in shares] == [str(shared_folder)]  # type: ignore[union-attr]
    seeding = daemon.ok("GET", f"/api/torrents/{shared['id']}")  # type: ignore[index]
    assert (seeding["state"], seeding["progress"]) == ("seeding", 1.0)

    # A second torrent, uploaded as a file (base64 in JSON) into its own download folder.
    other = create_torrent(_folder(tmp_path, "other"))
    target = tmp_path / "downloads"
    added = daemon.ok(
        "POST",
        "/api/torrents",
        {"torrent": base64.b64encode(other.to_bytes()).decode(), "save_path": str(target)},
    )
    assert added["name"] == "other" and added["save_path"] == str(target)
    assert added["size"] == other.total_length
    files = daemon.ok("GET", f"/api/torrents/{added['id']}/files")
    assert [f["path"] for f in files] == ["other/big.bin", "other/docs/note.txt"]
    note = files[1]["index"]
    after = call(
        daemon,
        "PUT",
        f"/api/torrents/{added['id']}/priorities",
        "/api/torrents/{id}/priorities",
        body={"priorities": {str(note): 0}},
    )
    assert [f["priority"] for f in after] == [1, 0]  # type: ignore[index]
    # The same torrent as a raw application/x-bittorrent body is the same torrent.
    again = daemon.ok(
        "POST", "/api/torrents", raw=other.to_bytes(), content_type="application/x-bittorrent"
    )
    assert again["id"] == added["id"]
    daemon.ok("DELETE", f"/api/torrents/{added['id']}?delete_data=true")


def test_a_stream_url_serves_a_file_without_the_api_token(daemon: Daemon, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "streamed")
    shared = daemon.ok("POST", "/api/shares", {"path": str(folder)})
    path = f"/api/torrents/{shared['id']}/stream"
    answer = call(daemon, "POST", path, "/api/torrents/{id}/stream", body={})
    assert isinstance(answer, dict) and answer["name"] == "big.bin"  # no media: the largest
    CALLED.add(("get", "/stream/{token}/{id}/{file}/{name}"))
    with urllib.request.urlopen(answer["url"], timeout=30) as response:
        assert response.read() == (folder / "big.bin").read_bytes()


def test_live_routes(daemon: Daemon) -> None:
    """Every live route once (their behaviour: tests/e2e/test_live_api.py)."""
    started: Any = call(daemon, "POST", "/api/live", "/api/live", body={"name": "clip.ts"})
    live_id = started["id"]
    data = f"/api/live/{live_id}/data"
    written: Any = call(
        daemon,
        "POST",
        data,
        "/api/live/{id}/data",
        raw=b"frame",
        content_type="application/octet-stream",
    )
    assert written == {"pieces": 1, "bytes": 5, "edge": 0}
    watched: Any = call(
        daemon, "POST", "/api/live/watch", "/api/live/watch", body={"key": started["live_key"]}
    )
    assert watched["url"] == started["url"]  # the broadcaster's own broadcast
    ended: Any = call(daemon, "DELETE", f"/api/live/{live_id}", "/api/live/{id}")
    assert ended == {"id": live_id, "ended": True}
    CALLED.add(("get", "/live/{token}/{id}/{name}"))
    with urllib.request.urlopen(started["url"], timeout=30) as response:
        assert response.read() == b""  # from the live edge: the end piece
    listed: Any = call(daemon, "GET", "/api/live", "/api/live")
    assert [b["id"] for b in listed] == [live_id]


def test_events_stream_sends_snapshots(daemon: Daemon) -> None:
    CALLED.add(("get", "/api/events"))
    request = urllib.request.Request(daemon.url + "/api/events")
    request.add_header("Authorization", f"Bearer {daemon.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        first = response.readline().decode()
        data = response.readline().decode()
    assert first == "event: torrents\n"
    assert isinstance(json.loads(data.removeprefix("data: ")), list)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "needle"),
    [
        ("POST", "/api/torrents", {"magnet": "magnet:?xt=urn:btih:zz"}, 400, "hash"),
        ("POST", "/api/torrents", {"magnet": "http://x"}, 400, "magnet"),
        ("POST", "/api/torrents", {}, 400, "exactly one"),
        ("POST", "/api/torrents", {"torrent": "!!notbase64"}, 400, "base64"),
        ("POST", "/api/torrents", {"torrent": base64.b64encode(b"d3:fooe").decode()}, 400, ""),
        ("POST", "/api/torrents", {"path": "/nonexistent/x.torrent"}, 400, "cannot read"),
        ("POST", "/api/torrents", [1, 2], 400, "object"),
        ("GET", "/api/torrents/nothex", None, 400, "40 lowercase hex"),
        ("GET", "/api/torrents/" + "0" * 40, None, 404, "no torrent"),
        ("POST", "/api/torrents/" + "0" * 40 + "/pause", None, 404, "no torrent"),
        ("DELETE", "/api/torrents/" + "0" * 40 + "?delete_data=maybe", None, 400, "delete_data"),
        ("PUT", "/api/torrents/" + "0" * 40 + "/priorities", {"priorities": 3}, 400, "list"),
        ("PATCH", "/api/settings", {"listen_port": 70000}, 400, "listen_port"),
        ("PATCH", "/api/settings", {"api_host": "0.0.0.0"}, 400, "api_host"),
        ("PATCH", "/api/settings", {"encryption": "always"}, 400, "encryption"),
        ("PATCH", "/api/settings", {}, 400, "no setting"),
        ("POST", "/api/shares", {"path": "/nonexistent/folder"}, 400, "no such file or folder"),
        ("POST", "/api/shares", {"path": "/no/such", "with_peer": "x"}, 400, "HOST:PORT"),
        ("POST", "/api/shares", {"path": "/no/such", "with_peer": 5}, 400, "with_peer"),
        ("POST", "/api/torrents", {"magnet": MAGNET, "peers": ["h:0"]}, 400, "HOST:PORT"),
        ("POST", "/api/torrents", {"magnet": MAGNET, "peers": "h:1"}, 400, "list"),
        ("POST", "/api/torrents", {"magnet": MAGNET, "peers": ["h" * 300 + ":1"]}, 400, "HOST"),
        ("POST", "/api/torrents", {"magnet": MAGNET, "peers": ["h:1"] * 201}, 400, "at most"),
        ("POST", "/api/shares", {"path": 3}, 400, "path"),
        ("GET", "/api/nothing-here", None, 404, ""),
        ("DELETE", "/api/status", None, 405, ""),
    ],
)
def test_bad_requests_get_clear_json_errors(
    daemon: Daemon, method: str, path: str, body: object, status: int, needle: str
) -> None:
    got, answer = daemon.call(method, path, body)
    assert got == status
    assert isinstance(answer["error"], str) and answer["error"]
    assert needle in answer["error"]


def test_invalid_json_body_is_a_400(daemon: Daemon) -> None:
    status, answer = daemon.call("POST", "/api/torrents", raw=b"{not json")
    assert status == 400 and "JSON" in answer["error"]


def test_web_ui_is_served_without_token(daemon: Daemon) -> None:
    CALLED.update({("get", "/"), ("get", "/ui/{name}")})
    for path, kind in (
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ):
        with urllib.request.urlopen(daemon.url + path, timeout=10) as response:
            assert response.headers["Content-Type"].startswith(kind)
            assert len(response.read()) > 100
    status, _ = daemon.call("GET", "/ui/../api-token", token=None)
    assert status == 404


def test_identity_of_the_running_node(daemon: Daemon) -> None:
    from servent.codec.node_id import parse_node_id
    from servent.node.identity import load_or_create_identity

    identity = call(daemon, "GET", "/api/identity", "/api/identity")
    assert isinstance(identity, dict) and set(identity) == {"id", "name", "addresses"}
    stored = load_or_create_identity(daemon.data_dir)  # the key the daemon made on start
    assert parse_node_id(identity["id"]) == stored.public_key
    assert stat.S_IMODE((daemon.data_dir / "identity.key").stat().st_mode) == 0o600
    port = daemon.ok("GET", "/api/status")["listen_address"][1]  # type: ignore[index]
    assert f"127.0.0.1:{port}" in identity["addresses"]


def test_search_routes(daemon: Daemon) -> None:
    found = call(daemon, "GET", "/api/search?q=nothing+here&timeout=0.5", "/api/search")
    assert found == []
    CALLED.add(("get", "/api/search/results/{short}"))
    status, body = daemon.call("GET", "/api/search/results/0badc0de")
    assert status == 404 and "0badc0de" in body["error"]


def test_messaging_routes(daemon: Daemon) -> None:
    """Contacts, blocks and messages through the API (delivery itself: test_messaging_*)."""
    from servent.codec.node_id import format_node_id

    other = format_node_id(bytes(range(32)))
    contact = call(
        daemon, "POST", "/api/contacts", "/api/contacts", body={"id": other, "name": "Zed"}
    )
    assert contact == {**contact, "id": other, "name": "Zed", "unread": 0}  # type: ignore[dict-item]
    assert call(daemon, "GET", "/api/contacts", "/api/contacts") == [contact]
    call(daemon, "DELETE", f"/api/contacts/{other}", "/api/contacts/{node_id}")
    daemon.ok("POST", "/api/contacts", {"id": other})
    call(daemon, "DELETE", f"/api/contacts?id={other}", "/api/contacts")
    assert daemon.call("DELETE", f"/api/contacts/{other}")[0] == 404
    assert daemon.call("POST", "/api/contacts", {"id": "nope"})[0] == 400

    status, queued = daemon.call("POST", "/api/messages", {"to": other, "text": "hi", "wait": 0.5})
    CALLED.add(("post", "/api/messages"))
    assert status == 202 and queued["delivered"] is None and queued["to"] == other
    outbox = call(daemon, "GET", "/api/messages/outbox", "/api/messages/outbox")
    assert [m["id"] for m in outbox] == [queued["id"]]  # type: ignore[attr-defined]
    sent = call(daemon, "GET", "/api/messages?direction=out", "/api/messages")
    assert [m["text"] for m in sent] == ["hi"]  # type: ignore[attr-defined]
    too_big = daemon.call("POST", "/api/messages", {"to": other, "text": "x" * 65_537})
    assert too_big[0] == 400 and "64 KiB" in too_big[1]["error"]
    everyone = daemon.ok(
        "POST", "/api/messages", {"broadcast": True, "text": "all", "channel": "c"}
    )
    assert everyone["channel"] == "c" and everyone["to"] is None
    assert call(daemon, "GET", "/api/messages/unread", "/api/messages/unread") == {
        "direct": {},
        "channels": {},
    }
    call(daemon, "POST", "/api/messages/read", "/api/messages/read", body={"channel": "c"})
    call(daemon, "POST", "/api/blocked", "/api/blocked", body={"id": other})
    assert call(daemon, "GET", "/api/blocked", "/api/blocked") == [other]
    call(daemon, "DELETE", f"/api/blocked/{other}", "/api/blocked/{node_id}")
    network = call(daemon, "GET", "/api/messaging", "/api/messaging")
    assert network["outbox"] == 1 and network["neighbours"] == []  # type: ignore[index]
    assert network["channels"] == ["", "c"]  # type: ignore[index]  # broadcasting follows
    follow = call(daemon, "POST", "/api/channels", "/api/channels", body={"channel": "d"})
    assert follow == ["", "c", "d"]
    assert call(daemon, "GET", "/api/channels", "/api/channels") == ["", "c", "d"]
    assert call(daemon, "DELETE", "/api/channels?channel=c", "/api/channels") == ["", "d"]


def test_synced_share_routes(daemon: Daemon, tmp_path: Path) -> None:
    from servent.codec.share_key import KeyKind, format_share_key, parse_share_key

    folder = _folder(tmp_path, "synced")
    keys: Any = call(daemon, "POST", "/api/sync", "/api/sync", body={"path": str(folder)})
    assert parse_share_key(keys["encrypted_key"]).kind is KeyKind.ENCRYPTED
    assert parse_share_key(keys["read_only_key"]).kind is KeyKind.READ_ONLY
    other = format_share_key(KeyKind.READ_ONLY, os.urandom(64))
    joined: Any = call(
        daemon,
        "POST",
        "/api/sync/join",
        "/api/sync/join",
        body={"key": other, "path": str(tmp_path / "joined")},
    )
    assert joined["role"] == "read_only" and (tmp_path / "joined").is_dir()
    listed: Any = call(daemon, "GET", "/api/sync", "/api/sync")
    assert {s["id"]: s["role"] for s in listed} == {keys["id"]: "owner", joined["id"]: "read_only"}
    status, body = daemon.call("POST", "/api/sync/join", {"key": "sro-typo", "path": "/x"})
    assert status == 400 and "share key" in body["error"]
    # A password locks the keys printed; joining needs the same password.
    locked: Any = daemon.ok(
        "POST", "/api/sync", {"path": str(_folder(tmp_path, "locked")), "password": "sesame"}
    )
    assert [locked[k][:4] for k in ("read_write_key", "read_only_key", "encrypted_key")] == [
        "prw-", "pro-", "pen-",
    ]  # fmt: skip
    daemon.ok("DELETE", f"/api/sync/{locked['id']}")  # one node holds a share once
    for password, error in ((None, "locked with a password"), ("sesam", "wrong password")):
        body = {"key": locked["read_only_key"], "path": str(tmp_path / "j2")}
        status, answer = daemon.call("POST", "/api/sync/join", {**body, "password": password})
        assert status == 400 and error in answer["error"], answer
    opened = daemon.ok(
        "POST", "/api/sync/join",
        {"key": locked["encrypted_key"], "path": str(tmp_path / "j2"), "password": "sesame"},
    )  # fmt: skip
    assert (opened["id"], opened["role"]) == (locked["id"], "encrypted")
    daemon.ok("DELETE", f"/api/sync/{opened['id']}")
    for share in (keys, joined):
        call(daemon, "DELETE", f"/api/sync/{share['id']}", "/api/sync/{id}")
    assert daemon.ok("GET", "/api/sync") == []
    assert (folder / "big.bin").exists() and (folder / "docs" / "note.txt").exists()


def test_network_routes(daemon: Daemon, tmp_path: Path) -> None:
    """Every network route once (their behaviour: tests/e2e/test_network_*.py); after the
    messaging test, whose message list a network broadcast would change."""
    made: Any = call(daemon, "POST", "/api/networks", "/api/networks", body={"name": "crew"})
    assert made["name"] == "crew"
    base = "/api/networks/crew"
    invite: Any = call(
        daemon, "POST", f"{base}/invites", "/api/networks/{network}/invites", body={"uses": 2}
    )
    assert invite["invite"]
    listed: Any = call(daemon, "GET", "/api/networks", "/api/networks")
    assert [n["name"] for n in listed] == ["crew"]
    members: Any = call(daemon, "GET", f"{base}/members", "/api/networks/{network}/members")
    assert len(members) == 1 and members[0]["you"]
    folder = tmp_path / "crew-share"
    folder.mkdir()
    (folder / "plan.txt").write_bytes(b"crew plan " * 100)
    shared: Any = call(
        daemon, "POST", f"{base}/shares", "/api/networks/{network}/shares",
        body={"path": str(folder)},
    )  # fmt: skip
    assert shared["existing"] is False
    found: Any = call(
        daemon, "GET", f"{base}/search?q=plan&timeout=1", "/api/networks/{network}/search"
    )
    assert isinstance(found, list)
    sent: Any = call(
        daemon, "POST", f"{base}/broadcast", "/api/networks/{network}/broadcast",
        body={"text": "hello crew"},
    )  # fmt: skip
    assert sent["network"]
    # Joining one's own network and revoking oneself are refused with a clear error.
    CALLED.update({("post", "/api/networks/join"),
                   ("delete", "/api/networks/{network}/members/{node_id}")})  # fmt: skip
    status, body = daemon.call("POST", "/api/networks/join", {"invite": invite["invite"]})
    assert 400 <= status < 500 and body["error"]
    status, body = daemon.call("DELETE", f"{base}/members/{members[0]['id']}")
    assert 400 <= status < 500 and body["error"]
    # The creator is an admin already and can never be demoted: both refused.
    CALLED.update({("post", "/api/networks/{network}/admins"),
                   ("delete", "/api/networks/{network}/admins/{node_id}")})  # fmt: skip
    status, body = daemon.call("POST", f"{base}/admins", {"member": members[0]["id"]})
    assert 400 <= status < 500 and body["error"]
    status, body = daemon.call("DELETE", f"{base}/admins/{members[0]['id']}")
    assert 400 <= status < 500 and body["error"]
    left: Any = call(daemon, "DELETE", base, "/api/networks/{network}")
    assert left["left"] == "crew"
    assert daemon.ok("GET", "/api/networks") == []


def test_zz_every_openapi_operation_was_exercised(daemon: Daemon) -> None:
    document = daemon.ok("GET", "/api/openapi.json")
    operations = {(method, path) for path, item in document["paths"].items() for method in item}
    assert operations - CALLED == set()


def _cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_commands_talk_to_the_daemon(daemon: Daemon, tmp_path: Path) -> None:
    magnet = "magnet:?xt=urn:btih:" + "a1" * 20 + "&dn=cli-magnet"
    added = _cli(daemon, "add", magnet, "--json")
    assert added.returncode == 0, added.stderr
    torrent_id = json.loads(added.stdout)["id"]
    listed = _cli(daemon, "list")
    assert "cli-magnet" in listed.stdout and torrent_id[:12] in listed.stdout
    assert "paused" in _cli(daemon, "pause", torrent_id[:10]).stdout
    assert json.loads(_cli(daemon, "resume", torrent_id, "--json").stdout)["paused"] is False
    status = _cli(daemon, "status")
    assert status.returncode == 0 and daemon.url in status.stdout
    assert json.loads(_cli(daemon, "status", "--json").stdout)["dht_enabled"] is False
    folder = _folder(tmp_path, "cli-share")
    shared = _cli(daemon, "share", str(folder))
    assert shared.returncode == 0 and "magnet:?xt=urn:btih:" in shared.stdout
    torrent_file = tmp_path / "x.torrent"
    torrent_file.write_bytes(create_torrent(_folder(tmp_path, "cli-file")).to_bytes())
    from_file = _cli(daemon, "add", str(torrent_file), "--save-path", str(tmp_path / "dl"))
    assert from_file.returncode == 0 and "cli-file" in from_file.stdout
    assert _cli(daemon, "remove", torrent_id).returncode == 0
    assert torrent_id not in _cli(daemon, "list", "--json").stdout
    missing = _cli(daemon, "pause", "f" * 40)
    assert missing.returncode == 1
    assert missing.stderr.startswith("servent: error:") and "Traceback" not in missing.stderr


def test_cli_without_a_daemon_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servent", "list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no node runs for" in result.stderr
    assert f"servent start --data-dir {tmp_path}" in result.stderr  # the README's command


def _wait_for_dht_nodes(daemon: Daemon, minimum: int, timeout: float = 30.0) -> int:
    """Read the daemon's event stream (a snapshot a second) until its DHT knows enough nodes."""
    request = urllib.request.Request(daemon.url + "/api/events")
    request.add_header("Authorization", f"Bearer {daemon.token}")
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(request, timeout=timeout) as stream:
        while time.monotonic() < deadline:
            count = int(daemon.ok("GET", "/api/status")["dht_nodes"])
            if count >= minimum:
                return count
            stream.readline()  # next event line: wakes us at least once a second
    raise AssertionError(f"DHT of {daemon.url} stayed below {minimum} nodes")


def test_five_daemons_join_one_dht_bootstrapped_from_the_first(tmp_path: Path) -> None:
    config = tmp_path / "loopback.toml"
    config.write_text("dht_bootstrap = []\ndht_restrict_ips = false\n")
    common = ("--config", str(config), "--dht-enabled", "true")
    daemons = [start_daemon(tmp_path / "d0", *common)]
    try:
        host, port = daemons[0].ok("GET", "/api/status")["dht_address"]
        assert host == "127.0.0.1"
        for index in range(1, 5):
            daemons.append(
                start_daemon(tmp_path / f"d{index}", *common, "--dht-bootstrap", f"{host}:{port}")
            )
        for daemon in daemons[1:]:
            assert _wait_for_dht_nodes(daemon, 1) >= 1
        assert _wait_for_dht_nodes(daemons[0], 4) >= 4
    finally:
        for daemon in daemons:
            assert daemon.stop() == 0


def test_sharing_an_empty_folder_is_a_400(daemon: Daemon, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "zero.txt").write_bytes(b"")
    status, answer = daemon.call("POST", "/api/shares", {"path": str(empty)})
    assert status == 400 and "no data" in answer["error"]
