"""Per-client bookkeeping of the built-in tracker: groups, creator ledger, admission."""

from __future__ import annotations

from servent.proto.tracker_limits import ConnectionAdmission, CreatorLedger, address_group


def test_address_groups() -> None:
    assert address_group("10.1.2.3") == "10.1.2.3"
    assert address_group("2001:db8::1") == address_group("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_group("::ffff:10.1.2.3") == "10.1.2.3"
    assert address_group("not an ip") == "not an ip"


def test_ledger_knows_the_heaviest_creator_and_its_stalest_swarm() -> None:
    ledger = CreatorLedger()
    assert ledger.heaviest() is None
    for n in range(3):
        ledger.add("a", bytes([n]))
    ledger.add("b", b"x")
    assert ledger.heaviest() == ("a", 3)
    ledger.touch("a", bytes([0]))
    assert list(ledger.oldest_first("a")) == [b"\x01", b"\x02", b"\x00"]
    for n in range(3):
        ledger.remove("a", bytes([n]))
    ledger.remove("a", b"gone")  # unknown: ignored
    assert ledger.heaviest() == ("b", 1) and ledger.count("a") == 0
    ledger.remove("b", b"x")
    assert ledger.heaviest() is None


def test_admission_caps_per_client_and_in_total() -> None:
    admission = ConnectionAdmission(max_total=3, max_per_group=2)
    assert admission.admit("10.0.0.1") and admission.admit("10.0.0.1")
    assert not admission.admit("10.0.0.1")
    assert admission.admit("10.0.0.2")
    assert not admission.admit("10.0.0.3")  # total reached
    admission.release("10.0.0.1")
    assert admission.open_from("10.0.0.1") == 1 and admission.total == 2
    assert admission.admit("10.0.0.3")
    admission.release("10.0.0.9")  # never admitted: ignored
    assert admission.total == 3
