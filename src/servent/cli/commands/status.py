"""``servent status``: the running daemon's node status."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("status", help="show the running daemon's status")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, human_bytes, print_json

    client = client_from_args(args)
    status = client.request("GET", "/api/status")
    if args.json:
        print_json(status)
        return 0
    listen = status["listen_address"]
    print(f"API and web UI  {client.url}")
    print(f"peers on        {':'.join(map(str, listen)) if listen else 'not listening'}")
    dht = f"{status['dht_nodes']} nodes" if status["dht_enabled"] else "off"
    print(f"DHT             {dht}")
    print(f"reachable       {_reachability(status)}")
    print(f"IPv6 pinhole    {_pinhole(status.get('ipv6_pinhole'))}")
    print(f"uTP path MTU    {_path_mtu(status.get('utp_path_mtu'))}")
    print(f"torrents        {status['torrents']}")
    if "event_loop" in status:
        print(f"event loop      {status['event_loop']}")
    if "search" in status:
        search = status["search"]
        print(f"role            {search['role']} ({search['supernodes_known']} supernodes known)")
    print(
        f"rates           ↓{human_bytes(status['download_rate'])}/s "
        f"↑{human_bytes(status['upload_rate'])}/s"
    )
    print(
        f"this session    ↓{human_bytes(status['downloaded'])} ↑{human_bytes(status['uploaded'])}"
    )
    print(
        f"all time        ↓{human_bytes(status.get('all_time_downloaded', 0))} "
        f"↑{human_bytes(status.get('all_time_uploaded', 0))}"
    )
    print(f"data dir        {status['data_dir']}")
    print(f"downloads       {status['download_dir']}")
    for folder in status["shared_folders"]:
        print(f"shared          {folder}")
    return 0


def _reachability(status: dict[str, object]) -> str:
    """``yes at 1.2.3.4:6881 (nat: mapped)``: the three reachability keys in one line."""
    reachable = status.get("reachable")
    verdict = "yes" if reachable is True else "no" if reachable is False else "unknown"
    external = status.get("external_address")
    where = f" at {external[0]}:{external[1]}" if isinstance(external, list) else ""
    relay = status.get("relay")
    via = f" via relay {relay[0]}:{relay[1]}" if isinstance(relay, list) else ""
    return f"{verdict}{where}{via} (nat: {status.get('nat', 'unknown')})"


def _pinhole(pinhole: object) -> str:
    """``open at [2001:db8::5]:6881 (pcp: tcp 6881, udp 6881)``, ``pending``, ``failed (why)``."""
    if not isinstance(pinhole, dict):
        return "off (port mapping off, or no global IPv6 address)"
    state = str(pinhole.get("state"))
    address = pinhole.get("address")
    if state == "open" and isinstance(address, list):
        ports = ", ".join(map(str, pinhole.get("ports") or ()))
        return f"open at [{address[0]}]:{address[1]} ({pinhole.get('protocol')}: {ports})"
    error = pinhole.get("error")
    return f"{state} ({error})" if error else state


def _path_mtu(summary: object) -> str:
    """``1500 bytes (median of 3 paths, 1280..1500; 1 still searching)``."""
    if not isinstance(summary, dict):
        return "no uTP connection"
    paths = summary["paths"]
    spread = f", {summary['smallest']}..{summary['largest']}" if paths > 1 else ""
    searching = f"; {summary['searching']} still searching" if summary.get("searching") else ""
    noun = "path" if paths == 1 else "paths"
    return f"{summary['median']} bytes (median of {paths} {noun}{spread}{searching})"
