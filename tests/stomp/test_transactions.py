"""BEGIN / COMMIT / ABORT (reference: ActiveMQ 5.17)."""


def test_abort_discards_transacted_sends(client):
    c = client()
    c.subscribe("/queue/tx.abort")
    p = client()
    tx = p.begin()
    p.send("/queue/tx.abort", "one", transaction=tx)
    p.send("/queue/tx.abort", "two", transaction=tx)
    c.expect_no_message(0.3)  # nothing is visible before the outcome
    p.abort(tx)
    p.send("/queue/tx.abort", "after")
    assert c.get().body == "after"
    c.expect_no_message(0.3)


def test_commit_delivers_transacted_sends_in_order(client):
    c = client()
    c.subscribe("/queue/tx.commit")
    p = client()
    tx = p.begin()
    p.send("/queue/tx.commit", "one", transaction=tx)
    p.send("/queue/tx.commit", "two", transaction=tx)
    c.expect_no_message(0.3)
    p.commit(tx)
    assert [m.body for m in c.get_n(2)] == ["one", "two"]


def test_transactions_are_independent(client):
    c = client()
    c.subscribe("/queue/tx.two")
    p = client()
    t1 = p.begin()
    t2 = p.begin()
    p.send("/queue/tx.two", "in-t1", transaction=t1)
    p.send("/queue/tx.two", "in-t2", transaction=t2)
    p.abort(t1)
    p.commit(t2)
    assert c.get().body == "in-t2"
    c.expect_no_message(0.3)


def test_ack_in_aborted_transaction_is_undone(client):
    p = client()
    p.send("/queue/tx.ack", "work")
    a = client()
    a.subscribe("/queue/tx.ack", ack="client-individual")
    m = a.get()
    tx = a.begin()
    a.ack(m, transaction=tx)
    a.abort(tx)
    # The ack was rolled back: the message is not consumed and comes back once its
    # consumer goes away.
    a.disconnect()
    b = client()
    b.subscribe("/queue/tx.ack", ack="client-individual")
    again = b.get()
    assert again.body == "work"
    assert again.headers.get("redelivered") == "true"


def test_ack_in_committed_transaction_consumes(client):
    p = client()
    p.send("/queue/tx.ackc", "done")
    a = client()
    a.subscribe("/queue/tx.ackc", ack="client-individual")
    m = a.get()
    tx = a.begin()
    a.ack(m, transaction=tx)
    a.commit(tx)
    a.disconnect()
    b = client()
    b.subscribe("/queue/tx.ackc")
    b.expect_no_message(0.5)


def test_uncommitted_transaction_is_aborted_on_disconnect(client):
    c = client()
    c.subscribe("/queue/tx.dangling")
    p = client()
    tx = p.begin()
    p.send("/queue/tx.dangling", "never", transaction=tx)
    p.disconnect()
    c.expect_no_message(0.5)


def test_commit_of_unknown_transaction_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.send_frame("COMMIT", {"transaction": "no-such-tx", "receipt": "c-1"})
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "c-1"


def test_begin_twice_with_same_id_is_an_error(raw):
    r = raw()
    r.connect("1.2")
    r.request("BEGIN", {"transaction": "dup"})
    r.send_frame("BEGIN", {"transaction": "dup", "receipt": "b-2"})
    f = r.recv_frame()
    assert f.command == "ERROR", f
    assert f.headers.get("receipt-id") == "b-2"
