"""OpenWire authentication and authorization with the real ActiveMQ 5.17 JMS client: the shared
users, loopback defaults and `[[authorization]]` entries (docs/security.md), refused as ActiveMQ's
security brokers refuse (a `java.lang.SecurityException` the client raises as
`javax.jms.JMSSecurityException`)."""

from __future__ import annotations

from gwtest.security import security_toml

SECURITY = "javax.jms.JMSSecurityException"

USERS = {
    "alice": ("s3cret-alice", ["admins"]),
    "bob": ("s3cret-bob", ["producers"]),
    "carol": ("s3cret-carol", ["consumers"]),
    "dave": ("s3cret-dave", ["outsiders"]),
}

ENTRIES = [
    {"queue": "orders.>", "read": ["consumers", "admins"], "write": ["producers", "admins"],
     "admin": ["admins"]},
    # ActiveMQ's advice for every secured broker: the client's advisory consumer needs these.
    {"topic": "ActiveMQ.Advisory.>", "read": ["admins", "producers", "consumers"],
     "write": ["admins", "producers", "consumers"], "admin": ["admins", "producers", "consumers"]},
]


def login(user: str | None, password: str | None) -> str:
    if user is None:
        return ""
    return f"jms.userName={user}&jms.password={password}"


def outcome(result, op: str) -> str:
    """The line the probe printed for `op`: "OK ..." or "DENIED ..."."""
    for line in result.lines:
        if line == f"OK {op}" or line.startswith(f"DENIED {op} "):
            return line
    raise AssertionError(f"no outcome for {op}:\n{result}")


def test_loopback_default_admits_anonymous_and_guest_but_not_a_wrong_guest_password(gateway, jms):
    for user, password in [(None, None), ("guest", "guest"), ("someone", "anything")]:
        got = jms(url_options=login(user, password)).run("secure", "send:queue:sec.default")
        assert outcome(got, "send:queue:sec.default") == "OK send:queue:sec.default", got
    refused = jms(url_options=login("guest", "wrong")).run("secure", "send:queue:sec.default")
    assert refused.returncode == 0, refused
    assert refused.lines == [
        f"REFUSED {SECURITY}: User name [guest] or password is invalid."], refused
    # Three sends went through, the refused client's none.
    drained = jms().run("receive", "queue:sec.default", "3000", "4")
    assert [r.text for r in drained.received] == ["secure"] * 3, drained


def test_configured_users_are_checked_refusals_close_only_that_connection(make_gateway, jms):
    gw = make_gateway(extra_toml=security_toml(users=USERS))
    ok = jms(gw, login("alice", "s3cret-alice")).run("secure", "send:queue:sec.users",
                                                    "consume:queue:sec.users")
    assert outcome(ok, "send:queue:sec.users") == "OK send:queue:sec.users", ok
    assert [r.text for r in ok.received] == ["secure"], ok
    for user, password, message in [
        ("alice", "wrong", "User name [alice] or password is invalid."),
        ("mallory", "s3cret-alice", "User name [mallory] or password is invalid."),
        ("guest", "guest", "User name [guest] or password is invalid."),
        (None, None, "User name [null] or password is invalid."),
    ]:
        refused = jms(gw, login(user, password)).run("secure", "send:queue:sec.users")
        assert refused.lines == [f"REFUSED {SECURITY}: {message}"], refused
    # The others go on being served.
    again = jms(gw, login("bob", "s3cret-bob")).run("secure", "send:queue:sec.users")
    assert outcome(again, "send:queue:sec.users") == "OK send:queue:sec.users", again
    log = gw.log_path.read_text()
    assert "s3cret" not in log


def test_authorization_entries_as_activemq_connection_stays_up(make_gateway, jms):
    gw = make_gateway(extra_toml=security_toml(users=USERS, authorization=ENTRIES))
    bob = jms(gw, login("bob", "s3cret-bob"))
    # The queue does not exist yet: creating it on first send needs admin, which bob lacks.
    first = bob.run("secure", "send:queue:orders.eu", "temp-queue")
    assert outcome(first, "send:queue:orders.eu") == (
        f"DENIED send:queue:orders.eu {SECURITY}: "
        "User bob is not authorized to create: queue://orders.eu"), first
    # The connection stayed up: its temporary queue works (temporary destinations belong to
    # their connection).
    assert outcome(first, "temp-queue") == "OK temp-queue", first
    alice = jms(gw, login("alice", "s3cret-alice"))
    made = alice.run("secure", "send:queue:orders.eu")
    assert outcome(made, "send:queue:orders.eu") == "OK send:queue:orders.eu", made
    # Now it exists: write is enough to send, not to consume, browse, or write elsewhere.
    got = bob.run("secure", "produce:queue:orders.eu", "send:queue:orders.eu",
                  "consume:queue:orders.eu", "browse:orders.eu", "send:queue:billing",
                  "send:topic:orders.eu", "send:queue:orders.eu")
    assert outcome(got, "produce:queue:orders.eu") == "OK produce:queue:orders.eu", got
    assert outcome(got, "send:queue:orders.eu") == "OK send:queue:orders.eu", got
    assert outcome(got, "consume:queue:orders.eu") == (
        f"DENIED consume:queue:orders.eu {SECURITY}: "
        "User bob is not authorized to read from: queue://orders.eu"), got
    assert outcome(got, "browse:orders.eu") == (
        f"DENIED browse:orders.eu {SECURITY}: "
        "User bob is not authorized to read from: queue://orders.eu"), got
    assert outcome(got, "send:queue:billing") == (
        f"DENIED send:queue:billing {SECURITY}: "
        "User bob is not authorized to write to: queue://billing"), got
    # Entries are per kind: the queue entry grants nothing on the topic of the same name.
    assert outcome(got, "send:topic:orders.eu") == (
        f"DENIED send:topic:orders.eu {SECURITY}: "
        "User bob is not authorized to write to: topic://orders.eu"), got
    assert sum(line == "OK send:queue:orders.eu" for line in got.lines) == 2, got
    # carol reads what alice and bob sent (three messages), and may not send.
    carol = jms(gw, login("carol", "s3cret-carol"))
    read = carol.run("secure", "browse:orders.eu", "consume:queue:orders.eu",
                     "send:queue:orders.eu")
    assert outcome(read, "browse:orders.eu") == "OK browse:orders.eu", read
    assert outcome(read, "consume:queue:orders.eu") == "OK consume:queue:orders.eu", read
    assert [r.text for r in read.received] == ["secure"] * 4, read
    assert outcome(read, "send:queue:orders.eu") == (
        f"DENIED send:queue:orders.eu {SECURITY}: "
        "User carol is not authorized to write to: queue://orders.eu"), read
    # Browsing consumed nothing: the two others are still there (and no more).
    rest = carol.run("receive", "queue:orders.eu", "3000", "3")
    assert [r.text for r in rest.received] == ["secure"] * 2, rest


def test_advisory_topics_need_read_as_on_activemq(make_gateway, jms):
    gw = make_gateway(extra_toml=security_toml(users=USERS, authorization=ENTRIES))
    # dave's groups appear in no entry: the client's default advisory consumer is refused, and
    # with it the connection's first session, as ActiveMQ does.
    refused = jms(gw, login("dave", "s3cret-dave")).run("secure", "send:queue:orders.eu")
    assert len(refused.lines) == 1, refused
    assert refused.lines[0].startswith(
        f"REFUSED {SECURITY}: User dave is not authorized to read from: "
        "topic://ActiveMQ.Advisory.Temp"), refused
    # Without advisories (jms.watchTopicAdvisories=false) dave connects, and may do nothing.
    quiet = jms(gw, login("dave", "s3cret-dave") + "&jms.watchTopicAdvisories=false")
    got = quiet.run("secure", "consume:queue:orders.eu")
    assert outcome(got, "consume:queue:orders.eu") == (
        f"DENIED consume:queue:orders.eu {SECURITY}: "
        "User dave is not authorized to read from: queue://orders.eu"), got


def test_temp_destination_authorization_as_activemq_temp_entry(make_gateway, jms):
    temp = (
        "\n[temp_destination_authorization]\n"
        'read = ["admins", "consumers"]\nwrite = ["admins", "consumers"]\nadmin = ["admins", "consumers"]\n'
    )
    gw = make_gateway(extra_toml=security_toml(users=USERS, authorization=ENTRIES) + temp)
    # carol may create, send to and read from a temporary queue; bob (producers) may not create.
    ok = jms(gw, login("carol", "s3cret-carol")).run("secure", "temp-queue")
    assert outcome(ok, "temp-queue") == "OK temp-queue", ok
    assert [r.text for r in ok.received] == ["temp"], ok
    refused = jms(gw, login("bob", "s3cret-bob")).run("secure", "temp-queue", "temp-queue")
    lines = [line for line in refused.lines if line.startswith("DENIED temp-queue ")]
    assert len(lines) == 2, refused
    assert lines[0].startswith(
        f"DENIED temp-queue {SECURITY}: User bob is not authorized to create: temp-queue://ID:"), refused
