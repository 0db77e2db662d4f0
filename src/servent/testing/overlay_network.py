"""A network of servent nodes in virtual time: the overlay, broadcasts and direct messages.

Every node runs the production sans-IO cores: a :class:`GossipRouter` for
broadcasts, a :class:`NeighbourBook` choosing its neighbours (fed by a modelled
DHT rendezvous and by peer exchange, :mod:`servent.testing.overlay_mesh`) and an
:class:`Outbox` for direct messages. What is modelled is
the world around them: node channels between nodes (a one-way delay per
direction drawn from each end's access delay), nodes that leave without
notice and come back at a new address, and the lookup of a node's current
address record in the DHT (a delay drawn from a heavy-tailed distribution,
answering the record the node last published). Frames to a node that has
left are lost; its neighbours notice after the channel's idle timeout.

``bench/overlay_sim.py`` prints the figures; tests run it small.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections.abc import Callable

from servent.proto.gossip import (
    Deliver,
    Disconnect,
    GossipMessage,
    GossipRouter,
    Send,
)
from servent.proto.outbox import Outbox, OutgoingMessage
from servent.testing.overlay_mesh import MeshMaintenance
from servent.testing.overlay_model import OverlayConfig, OverlayReport, SimNode

FAKE_SIGNATURE = bytes(64)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class OverlaySimulation(MeshMaintenance):
    """Builds the network, schedules churn and traffic, and runs it to the end."""

    def __init__(self, config: OverlayConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._counter = itertools.count()
        self._rendezvous: dict[tuple[int, int], float] = {}
        self.nodes = [self._make_node(i) for i in range(config.nodes)]
        #: The address record each node last published: its incarnation.
        self.records: dict[int, int] = {i: 0 for i in range(config.nodes)}
        self.report = OverlayReport(nodes=config.nodes, churned=0)
        self._received: dict[bytes, dict[int, float]] = {}
        self._broadcasts_sent = 0
        self._sent_at: dict[bytes, float] = {}
        self._stop_churn_at = config.duration

    # ------------------------------------------------------------------ setup

    def _make_node(self, index: int, incarnation: int = 0) -> SimNode:
        config = self.config
        rng = random.Random(self.rng.getrandbits(64))
        access = rng.lognormvariate(math.log(config.access_median), config.access_sigma)
        router = GossipRouter(rng=rng, now=self.now, verify=_accept, config=config.gossip)
        book = self._new_book(index, incarnation, rng)
        return SimNode(index, access, router, book, Outbox(rng=rng), incarnation=incarnation)

    def schedule(self, when: float, action: Callable[..., None], *args: object) -> None:
        heapq.heappush(self._queue, (when, next(self._counter), action, args))

    def delay(self, a: SimNode, b: SimNode) -> float:
        return a.access + b.access + self.rng.uniform(0.0, 0.005)

    def _online(self) -> list[int]:
        return [node.index for node in self.nodes if node.online]

    def _join_initial(self) -> None:
        """Nodes start over the join window; each finds others through the rendezvous."""
        for node in self.nodes:
            node.next_heartbeat = self.rng.uniform(0.0, self.config.join_window)
            node.online_since = node.next_heartbeat
            self.schedule(node.next_heartbeat, self._join, node.index)

    def _join(self, index: int) -> None:
        node = self.nodes[index]
        node.router = GossipRouter(
            rng=node.book.rng, now=self.now, verify=_accept, config=self.config.gossip
        )
        self._start_mesh(node)
        self._heartbeat(index, node.incarnation)

    def _link(self, a: SimNode, b: SimNode) -> None:
        a.links.add(b.index)
        b.links.add(a.index)
        a.router.add_neighbour(b.index, self.now)
        b.router.add_neighbour(a.index, self.now)
        self._flush(a)
        self._flush(b)

    def _unlink(self, node: SimNode, other_index: int) -> None:
        if other_index in node.links:
            node.links.discard(other_index)
            node.router.remove_neighbour(other_index)

    # ------------------------------------------------------------------ traffic

    def _flush(self, node: SimNode) -> None:
        for action in node.router.actions():
            if isinstance(action, Send):
                node.frames_sent += 1
                self.report.gossip_frames += 1
                target = self.nodes[action.peer]  # type: ignore[call-overload]
                arrive = self.now + self.delay(node, target)
                self.schedule(
                    arrive, self._frame_arrives, node.index, node.incarnation,
                    target.index, target.incarnation, action.frame,
                )  # fmt: skip
            elif isinstance(action, Deliver):
                self._received.setdefault(action.id, {})[node.index] = self.now
            elif isinstance(action, Disconnect):
                self._unlink(node, action.peer)  # type: ignore[arg-type]

    def _frame_arrives(
        self, source: int, source_inc: int, target: int, target_inc: int, frame: object
    ) -> None:
        node = self.nodes[target]
        if not node.online or node.incarnation != target_inc:
            return  # the channel died with the node
        sender = self.nodes[source]
        if sender.incarnation != source_inc or source not in node.links:
            return
        node.router.receive(source, frame, self.now)  # type: ignore[arg-type]
        self._flush(node)

    def _heartbeat(self, index: int, incarnation: int) -> None:
        node = self.nodes[index]
        if not node.online or node.incarnation != incarnation:
            return
        node.router.handle_timer(self.now)
        self._flush(node)
        self.schedule(node.router.next_timer(), self._heartbeat, index, incarnation)

    def _broadcast(self, _: int) -> None:
        online = self._online()
        author = self.nodes[self.rng.choice(online)]
        message = GossipMessage(
            author=(author.index + 2).to_bytes(32, "little"),  # a usable (not low-order) key
            sequence=self._broadcasts_sent,
            time=int(self.now),
            channel=b"",
            payload=b"broadcast %d" % self._broadcasts_sent,
            signature=FAKE_SIGNATURE,
        )
        self._broadcasts_sent += 1
        ident = author.router.publish(message, self.now)
        self._received.setdefault(ident, {})[author.index] = self.now
        self._flush(author)
        window_end = self.now + self.config.broadcast_window
        self.schedule(window_end, self._count_reach, ident, self.now)

    # ------------------------------------------------------------------ direct messages

    def _send_direct(self, number: int) -> None:
        online = self._online()
        sender = self.nodes[self.rng.choice(online)]
        recipient = self.rng.randrange(len(self.nodes))
        while recipient == sender.index:
            recipient = self.rng.randrange(len(self.nodes))
        ident = number.to_bytes(16, "big")
        sender.outbox.queue(ident, recipient.to_bytes(4, "big"), b"hello", self.now)
        self._sent_at[ident] = self.now
        self.report.direct_sent += 1
        self._attempt_due(sender)

    def _attempt_due(self, sender: SimNode) -> None:
        for message in sender.outbox.due(self.now):
            self._attempt(sender, message)
        when = sender.outbox.next_timer()
        if when is not None:
            self.schedule(when, self._outbox_timer, sender.index, sender.incarnation)

    def _outbox_timer(self, index: int, incarnation: int) -> None:
        node = self.nodes[index]
        if node.online and node.incarnation == incarnation:
            self._attempt_due(node)

    def _attempt(self, sender: SimNode, message: OutgoingMessage) -> None:
        """Look up the record, dial, send, wait for the ack: one chain of events."""
        config = self.config
        recipient = self.nodes[int.from_bytes(message.recipient, "big")]
        lookup = self.rng.lognormvariate(math.log(config.lookup_median), config.lookup_sigma)
        recorded = self.records[recipient.index]
        reachable_at = self.now + lookup
        self.schedule(
            reachable_at, self._dial, sender.index, sender.incarnation, recipient.index,
            recorded, message.id,
        )  # fmt: skip

    def _dial(
        self, sender_index: int, sender_inc: int, recipient_index: int, recorded: int,
        ident: bytes,
    ) -> None:  # fmt: skip
        sender = self.nodes[sender_index]
        if not sender.online or sender.incarnation != sender_inc:
            return  # the attempt dies with the sender; the outbox restores it on return
        recipient = self.nodes[recipient_index]
        if not recipient.online or recipient.incarnation != recorded:
            self.schedule(
                self.now + self.config.connect_timeout, self._attempt_failed,
                sender_index, sender_inc, ident,
            )  # fmt: skip
            return
        # Channel handshake (1.5 round trips), the message, and its ack back.
        one_way = self.delay(sender, recipient)
        self.report.direct_frames += 5
        sender.frames_sent += 3
        recipient.frames_sent += 2
        stored_at = self.now + 2.5 * one_way
        self.schedule(stored_at, self._stored, recipient_index, recorded, ident)
        self.schedule(
            stored_at + one_way, self._acked, sender_index, sender_inc, recipient_index,
            recorded, ident,
        )  # fmt: skip

    def _stored(self, recipient_index: int, incarnation: int, ident: bytes) -> None:
        recipient = self.nodes[recipient_index]
        if recipient.online and recipient.incarnation == incarnation:
            recipient.inbox.first_time(ident)

    def _acked(
        self, sender_index: int, sender_inc: int, recipient_index: int, recorded: int,
        ident: bytes,
    ) -> None:  # fmt: skip
        sender = self.nodes[sender_index]
        recipient = self.nodes[recipient_index]
        if not sender.online or sender.incarnation != sender_inc:
            return
        if not recipient.online or recipient.incarnation != recorded:
            self._attempt_failed(sender_index, sender_inc, ident)
            return
        message = sender.outbox.delivered(ident)
        if message is not None:
            self.report.direct_delivered += 1
            self.report.direct_latencies.append(self.now - self._sent_at[ident])
            self.report.direct_attempts.append(message.attempts)

    def _attempt_failed(self, sender_index: int, sender_inc: int, ident: bytes) -> None:
        sender = self.nodes[sender_index]
        if sender.online and sender.incarnation == sender_inc:
            sender.outbox.failed(ident, self.now, "unreachable")
            self._attempt_due(sender)

    # ------------------------------------------------------------------ churn

    def _leave(self, index: int) -> None:
        node = self.nodes[index]
        if not node.online or self.now >= self._stop_churn_at:
            return
        node.online = False
        self.report.churned += 1
        for other_index in list(node.links):
            detect = self.now + self.rng.uniform(0.5, self.config.idle_timeout)
            other_inc = self.nodes[other_index].incarnation
            self.schedule(detect, self._notice_gone, other_index, other_inc, index)
        node.links.clear()
        away = min(3 * self.config.offline_mean, self.rng.expovariate(1 / self.config.offline_mean))
        self.schedule(self.now + away, self._return, index)

    def _notice_gone(self, index: int, incarnation: int, gone: int) -> None:
        node = self._alive(index, incarnation)
        if node is not None and gone in node.links:
            self._close_link(node, gone)
            self._maintain_now(node)

    def _return(self, index: int) -> None:
        """Back at a new address: fresh router state, the outbox kept (it is on disk)."""
        old = self.nodes[index]
        fresh = self._make_node(index, old.incarnation + 1)
        fresh.outbox = old.outbox
        for message in fresh.outbox.pending():
            fresh.outbox.restore(message)
        fresh.inbox = old.inbox
        fresh.frames_sent = old.frames_sent
        fresh.online_since = self.now
        self.nodes[index] = fresh
        self.schedule(
            self.now + self.config.publish_delay, self._publish_record, index, fresh.incarnation
        )
        self._start_mesh(fresh)
        self.schedule(
            self.now + self.config.gossip.heartbeat, self._heartbeat, index, fresh.incarnation
        )
        self._attempt_due(fresh)

    def _publish_record(self, index: int, incarnation: int) -> None:
        if self.nodes[index].incarnation == incarnation:
            self.records[index] = incarnation

    # ------------------------------------------------------------------ run

    def run(self) -> OverlayReport:
        config = self.config
        self._join_initial()
        warmup = self.config.join_window + 10.0
        leavers = self.rng.sample(range(config.nodes), int(config.churn * config.nodes))
        for index in leavers:
            self.schedule(self.rng.uniform(warmup, config.duration), self._leave, index)
        for number in range(config.broadcasts):
            self.schedule(
                self.rng.uniform(warmup, config.duration - config.broadcast_window),
                self._broadcast,
                number,
            )
        for number in range(config.direct_messages):
            self.schedule(self.rng.uniform(warmup, config.duration), self._send_direct, number)
        end = config.duration + config.drain
        events = 0
        while self._queue and self._queue[0][0] <= end:
            when, _, action, args = heapq.heappop(self._queue)
            self.now = when
            action(*args)
            events += 1
        self.report.events = events
        self.report.virtual_seconds = end
        self.report.duplicates = sum(node.router.statistics.duplicates for node in self.nodes)
        online = [node for node in self.nodes if node.online]
        self.report.neighbours_mean = sum(len(n.links) for n in online) / max(len(online), 1)
        return self.report

    def _count_reach(self, ident: bytes, published: float) -> None:
        """Reach among the nodes online from the broadcast until now (its window's end)."""
        report = self.report
        received = self._received.get(ident, {})
        for node in self.nodes:
            if not node.online or node.online_since > published:
                continue
            report.broadcast_eligible += 1
            got = received.get(node.index)
            if got is not None:
                report.broadcast_reached += 1
                report.broadcast_latencies.append(got - published)


def _accept(_: GossipMessage) -> bool:
    return True


def frames_per_node(report: OverlayReport) -> float:
    return (report.gossip_frames + report.direct_frames + report.mesh_frames) / report.nodes


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
