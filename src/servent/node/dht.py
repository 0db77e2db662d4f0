"""The node's DHT: DHT-NET's :class:`~servent.net.dht_driver.DhtDriver` with its
identity and routing table kept in the node's sqlite state instead of a file.

Bootstrapping resolves host names and waits for the lookup in a background
task owned by the node; failing to join only costs a log line, the node runs on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from typing import TYPE_CHECKING

from servent.errors import ServentError
from servent.node.config import Config
from servent.node.state import StateStore

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver

log = logging.getLogger(__name__)

DNS_TIMEOUT = 10.0
BOOTSTRAP_TIMEOUT = 60.0
NODE_ID_SETTING = "dht_node_id"


def split_host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    return host.strip("[]"), int(port)


async def start_dht(config: Config, store: StateStore) -> DhtDriver | None:
    """Bind the DHT on the listen address with the saved id and contacts; None if it cannot."""
    from servent.net.dht_driver import DhtDriver
    from servent.net.udp_demux import UdpPort
    from servent.proto.dht.config import DhtConfig

    saved_id = store.settings().get(NODE_ID_SETTING)
    node_id = bytes.fromhex(saved_id) if isinstance(saved_id, str) else None
    dht_config = DhtConfig()
    if not config.dht_restrict_ips:
        dht_config = dataclasses.replace(dht_config, restrict_ips=False, rate_limit_per_ip=0.0)
    try:
        # With uTP on, the DHT's socket is shared: uTP datagrams are told apart by the demux.
        udp_port = (
            UdpPort.bind(config.listen_host, config.listen_port) if config.utp_enabled else None
        )
        driver = DhtDriver(
            host=config.listen_host, port=config.listen_port, node_id=node_id, config=dht_config,
            udp_port=udp_port,
        )  # fmt: skip
        await driver.start()
    except OSError as exc:
        log.warning("DHT could not bind %s:%s: %s", config.listen_host, config.listen_port, exc)
        return None
    store.set_settings({NODE_ID_SETTING: driver.node_id.hex()})
    driver.node.routing_table.import_nodes(store.dht_nodes(), asyncio.get_running_loop().time())
    return driver


async def bootstrap_dht(driver: DhtDriver, entries: tuple[str, ...]) -> bool:
    """Resolve ``host:port`` entries and join through them; True when the lookup finished."""
    loop = asyncio.get_running_loop()
    addrs: list[tuple[str, int]] = []
    for entry in entries:
        host, port = split_host_port(entry)
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM), DNS_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            log.info("DHT bootstrap %s unresolvable: %s", entry, exc)
            continue
        addrs.extend((str(info[4][0]), int(info[4][1])) for info in infos[:1])
    if not addrs and not driver.saved_contacts:
        return False
    try:
        await asyncio.wait_for(driver.bootstrap(addrs), BOOTSTRAP_TIMEOUT)
    except (TimeoutError, ServentError, OSError) as exc:
        log.info("DHT bootstrap did not finish: %s", exc)
        return False
    return True


def save_dht(driver: DhtDriver, store: StateStore) -> None:
    """Save the contacts and the node ID (BEP 42 may have changed it since start)."""
    store.save_dht_nodes(driver.node.routing_table.export_nodes())
    if store.settings().get(NODE_ID_SETTING) != driver.node_id.hex():
        store.set_settings({NODE_ID_SETTING: driver.node_id.hex()})


async def stop_dht(driver: DhtDriver, store: StateStore | None) -> None:
    try:
        if store is not None:
            save_dht(driver, store)
    finally:
        await driver.close()
        if driver.udp_port is not None:
            driver.udp_port.close()
