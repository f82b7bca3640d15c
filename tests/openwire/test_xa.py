"""XA transactions with the real ActiveMQ 5.17 JMS client (`ActiveMQXAConnectionFactory` and its
`XAResource`, driven as a transaction manager drives it): begin/end, prepare votes, one- and
two-phase commit, rollback, recover, and an unknown Xid."""

from __future__ import annotations


def test_xa_prepare_commit_rollback_recover(jms):
    j = jms()
    result = j.run("xa", "queue:orders.xa")
    assert result.returncode == 0, result
    # javax.transaction.xa.XAResource: XA_OK = 0, XA_RDONLY = 3.
    assert result.ok("two-phase vote=0"), result
    assert result.ok("rollback"), result
    assert result.ok("one-phase"), result
    assert result.ok("recover found=1 listed=true"), result
    assert result.ok("read-only vote=3"), result
    assert result.ok("receive"), result
    assert result.ok("unknown javax.transaction.xa.XAException"), result
    # The receive rolled back came back, redelivered, to the next branch, which committed it.
    got = result.received
    assert [(r.text, r.redelivered) for r in got] == [("xa-2pc", False), ("xa-2pc", True)], result
    # What is left: the committed sends only, in order; the rolled-back one never arrived.
    rest = j.run("receive", "queue:orders.xa", "3000", "3")
    assert [r.text for r in rest.received] == ["xa-1pc", "xa-recovered"], rest
