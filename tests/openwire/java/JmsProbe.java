import java.io.Serializable;
import java.util.ArrayList;
import java.util.Enumeration;

import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.Destination;
import javax.jms.JMSException;
import javax.jms.MapMessage;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.MessageProducer;
import javax.jms.ObjectMessage;
import javax.jms.Queue;
import javax.jms.Session;
import javax.jms.StreamMessage;
import javax.jms.TemporaryQueue;
import javax.jms.TextMessage;
import javax.jms.Topic;
import javax.jms.TopicSubscriber;

import org.apache.activemq.ActiveMQConnection;
import org.apache.activemq.ActiveMQConnectionFactory;

/**
 * A small JMS program driven by the OpenWire tests and the golden-byte capture.
 *
 * <pre>
 * java JmsProbe URL capture [nopull]            every message type, property type, ack, tx, temp queue
 *                                               (nopull: OpenWire 1 has no MessagePull)
 * java JmsProbe URL send DEST TEXT [N [TTL_MS]] send N (default 1) persistent TextMessages "TEXT-i"
 *                                               ("TEXT" when N is 1), with a time to live
 * java JmsProbe URL receive DEST TIMEOUT_MS [N] receive up to N messages (default 1), auto-ack
 * java JmsProbe URL pubsub TOPIC TEXT           subscribe, publish TEXT to the topic, receive it
 * java JmsProbe URL receive-noack DEST TIMEOUT_MS N   CLIENT_ACKNOWLEDGE, receive N, never ack
 * java JmsProbe URL receive-selector DEST SELECTOR TIMEOUT_MS N   receive up to N matching SELECTOR
 * java JmsProbe URL rollback-forever DEST TIMEOUT_MS  transacted: receive and roll back until the
 *                                               client's redelivery policy gives up (poison ack)
 * java JmsProbe URL durable CLIENT_ID TOPIC SUB TIMEOUT_MS N   durable subscriber: receive up to N,
 *                                               close without unsubscribing
 * java JmsProbe URL failover-roundtrip DEST     (a failover: URL) send "before", print "OK phase1",
 *                                               wait for a line on stdin, send "after", receive both
 * java JmsProbe URL request DEST TEXT TIMEOUT_MS   send TEXT with a temporary reply queue, await the reply
 * java JmsProbe URL respond DEST TIMEOUT_MS     answer one request with "reply:" + its text, to its JMSReplyTo
 * java JmsProbe URL client-ack-recover DEST     CLIENT_ACKNOWLEDGE: receive, recover, receive again, ack
 * java JmsProbe URL individual-ack DEST N INDEX  INDIVIDUAL_ACKNOWLEDGE: receive N, acknowledge only the INDEX-th
 * java JmsProbe URL nolocal TOPIC                a noLocal subscriber gets "other" (another connection), not "own"
 * java JmsProbe URL hold DEST                   CLIENT_ACKNOWLEDGE: receive one, print it, then wait for a line on
 *                                               stdin without acknowledging
 * java JmsProbe URL browse QUEUE [SELECTOR]      print what a QueueBrowser shows, consume nothing
 * java JmsProbe URL groups DEST                 two consumers, six messages in groups A and B: prints
 *                                               "GROUP consumer=<1|2> group=<A|B>" per message
 * java JmsProbe URL failover-poison DEST        (a failover: URL) transacted: receive one message, print
 *                                               "OK held", wait for a line on stdin (the broker restarts
 *                                               meanwhile), roll back, then receive and roll back until the client's
 *                                               redelivery policy gives up (poison ack)
 * java JmsProbe URL storm DEST CLIENT_ID N       N times: connect with CLIENT_ID (retrying while the previous
 *                                               connection is still known), take one message unacknowledged,
 *                                               drop the socket without closing anything; prints "OK storm N"
 * java JmsProbe URL hold-many DEST MODE N        MODE client, client-noack or transacted: receive N messages (give
 *                                               up after 5 s without one) holding every acknowledgement, then
 *                                               acknowledge (client: the last message's acknowledge();
 *                                               transacted: commit; client-noack: nothing) and close;
 *                                               prints "OK hold-many <received>"
 * java JmsProbe URL xa DEST                     XA (ActiveMQXAConnectionFactory, XAResource): a two-phase commit, a
 *                                               prepared rollback, a one-phase commit, a prepared branch found by
 *                                               recover then committed, a read-only prepare, a receive rolled back
 *                                               then received again and committed, a commit of an unknown Xid;
 *                                               prints "OK <step> ..." per step
 * java JmsProbe URL group-close DEST           (use prefetch 1) two CLIENT_ACKNOWLEDGE consumers: group G's first
 *                                               message picks its owner, the second follows it, a message with
 *                                               JMSXGroupSeq -1 closes the group and is held unacknowledged; the
 *                                               next G message goes to the other consumer: prints
 *                                               "OK group-close owner=<1|2> sticky=<bool> moved=<bool>"
 * java JmsProbe URL secure OP...                one connection (credentials from the URL's jms.userName /
 *                                               jms.password) doing each OP in turn: send:DEST, produce:DEST,
 *                                               consume:DEST (receive one within 2 s), browse:QUEUE, temp-queue
 *                                               (create, send, receive); prints "OK <op>" or
 *                                               "DENIED <op> <exception class>: <message>" per OP, or
 *                                               "REFUSED <exception class>: <message>" when the connection is
 *                                               refused; exit 0 unless something unexpected fails
 * </pre>
 *
 * DEST is "queue:NAME" or "topic:NAME". Every received message is printed as one line:
 * "RECEIVED type=<JMS class> text=<body or -> redelivered=<bool> props=<name=value;...>", sorted
 * property names; a step that works prints "OK <step>". Exit code 0 only when every step worked.
 */
public final class JmsProbe {

    private JmsProbe() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: JmsProbe URL capture|send|receive|pubsub ...");
            System.exit(2);
        }
        String url = args[0];
        String scenario = args[1];
        ActiveMQConnectionFactory factory = new ActiveMQConnectionFactory(url);
        int rc;
        switch (scenario) {
            case "capture":
                rc = capture(factory, args.length > 2 && args[2].equals("nopull"));
                break;
            case "send":
                rc = send(factory, args[2], args[3], args.length > 4 ? Integer.parseInt(args[4]) : 1,
                        args.length > 5 ? Long.parseLong(args[5]) : 0);
                break;
            case "receive":
                rc = receive(factory, args[2], Long.parseLong(args[3]),
                        args.length > 4 ? Integer.parseInt(args[4]) : 1);
                break;
            case "pubsub":
                rc = pubsub(factory, args[2], args[3]);
                break;
            case "receive-noack":
                rc = receiveNoAck(factory, args[2], Long.parseLong(args[3]), Integer.parseInt(args[4]));
                break;
            case "receive-selector":
                rc = receiveSelector(factory, args[2], args[3], Long.parseLong(args[4]),
                        Integer.parseInt(args[5]));
                break;
            case "durable":
                rc = durable(factory, args[2], args[3], args[4], Long.parseLong(args[5]),
                        Integer.parseInt(args[6]));
                break;
            case "failover-roundtrip":
                rc = failoverRoundtrip(factory, args[2]);
                break;
            case "request":
                rc = request(factory, args[2], args[3], Long.parseLong(args[4]));
                break;
            case "respond":
                rc = respond(factory, args[2], Long.parseLong(args[3]));
                break;
            case "client-ack-recover":
                rc = clientAckRecover(factory, args[2]);
                break;
            case "individual-ack":
                rc = individualAck(factory, args[2], Integer.parseInt(args[3]), Integer.parseInt(args[4]));
                break;
            case "nolocal":
                rc = noLocal(factory, args[2]);
                break;
            case "hold":
                rc = hold(factory, args[2]);
                break;
            case "browse":
                rc = browse(factory, args[2], args.length > 3 ? args[3] : null);
                break;
            case "groups":
                rc = groups(factory, args[2]);
                break;
            case "failover-poison":
                rc = failoverPoison(factory, args[2]);
                break;
            case "storm":
                rc = storm(factory, args[2], args[3], Integer.parseInt(args[4]));
                break;
            case "hold-many":
                rc = holdMany(factory, args[2], args[3], Integer.parseInt(args[4]));
                break;
            case "xa":
                rc = xa(url, args[2]);
                break;
            case "group-close":
                rc = groupClose(factory, args[2]);
                break;
            case "secure":
                rc = secure(factory, java.util.Arrays.copyOfRange(args, 2, args.length));
                break;
            case "rollback-forever":
                rc = rollbackForever(factory, args[2], Long.parseLong(args[3]));
                break;
            default:
                System.err.println("unknown scenario " + scenario);
                rc = 2;
        }
        System.out.flush();
        System.exit(rc);
    }

    private static Destination destination(Session session, String spec) throws JMSException {
        if (spec.startsWith("queue:")) {
            return session.createQueue(spec.substring(6));
        }
        if (spec.startsWith("topic:")) {
            return session.createTopic(spec.substring(6));
        }
        throw new IllegalArgumentException("destination must be queue:NAME or topic:NAME: " + spec);
    }

    private static int send(ActiveMQConnectionFactory factory, String dest, String text, int count, long ttl)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageProducer producer = session.createProducer(destination(session, dest));
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            producer.setTimeToLive(ttl);
            for (int i = 0; i < count; i++) {
                TextMessage message = session.createTextMessage(count == 1 ? text : text + "-" + i);
                message.setStringProperty("probe", "jms");
                message.setIntProperty("seq", i);
                producer.send(message);
            }
            System.out.println("OK send " + count);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int receive(ActiveMQConnectionFactory factory, String dest, long timeoutMs, int count)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            int received = 0;
            while (received < count) {
                Message message = consumer.receive(timeoutMs);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK receive " + received);
            return received == count ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static int receiveNoAck(ActiveMQConnectionFactory factory, String dest, long timeoutMs, int count)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            int received = 0;
            while (received < count) {
                Message message = consumer.receive(timeoutMs);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK receive-noack " + received);
            return received == count ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static int receiveSelector(ActiveMQConnectionFactory factory, String dest, String selector,
            long timeoutMs, int count) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest), selector);
            int received = 0;
            while (received < count) {
                Message message = consumer.receive(timeoutMs);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK receive-selector " + received);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int failoverPoison(ActiveMQConnectionFactory factory, String dest) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(true, Session.SESSION_TRANSACTED);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            Message first = consumer.receive(10000);
            if (first == null) {
                System.out.println("FAIL failover-poison: nothing received");
                return 1;
            }
            print(first);
            System.out.println("OK held");
            System.out.flush();
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
            // The message is still part of the open transaction (the client tracks its redelivery
            // after the reconnect without handing it out again): the application rolls back.
            try {
                session.rollback();
            } catch (JMSException e) {
                System.out.println("RETRY " + e.getClass().getName());
            }
            int deliveries = 1;
            while (true) {
                Message message;
                try {
                    message = consumer.receive(5000);
                } catch (JMSException e) {
                    System.out.println("RETRY " + e.getClass().getName());
                    continue;
                }
                if (message == null) {
                    break;
                }
                deliveries++;
                print(message);
                try {
                    session.rollback();
                } catch (JMSException e) {
                    System.out.println("RETRY " + e.getClass().getName());
                }
            }
            System.out.println("OK failover-poison " + deliveries);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int storm(ActiveMQConnectionFactory factory, String dest, String clientId, int rounds)
            throws Exception {
        for (int i = 0; i < rounds; i++) {
            ActiveMQConnection connection = null;
            for (int attempt = 0; connection == null; attempt++) {
                ActiveMQConnection candidate = (ActiveMQConnection) factory.createConnection();
                try {
                    candidate.setClientID(clientId);
                    candidate.start();
                    connection = candidate;
                } catch (javax.jms.InvalidClientIDException e) {
                    // The gateway has not seen the previous socket go yet.
                    candidate.getTransport().stop();
                    if (attempt > 200) {
                        throw e;
                    }
                    Thread.sleep(20);
                }
            }
            Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
            Message message = session.createConsumer(destination(session, dest)).receive(5000);
            if (message == null) {
                System.out.println("FAIL storm: nothing received in round " + i);
                return 1;
            }
            // Gone without RemoveInfo or ShutdownInfo, as a crashed client.
            connection.getTransport().stop();
        }
        System.out.println("OK storm " + rounds);
        return 0;
    }

    private static int holdMany(ActiveMQConnectionFactory factory, String dest, String mode, int count)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            boolean transacted = mode.equals("transacted");
            boolean acknowledge = !mode.equals("client-noack");
            Session session = connection.createSession(transacted,
                    transacted ? Session.SESSION_TRANSACTED : Session.CLIENT_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            Message last = null;
            int received = 0;
            while (received < count) {
                Message message = consumer.receive(5000);
                if (message == null) {
                    break;
                }
                last = message;
                received++;
            }
            if (transacted) {
                session.commit();
            } else if (last != null && acknowledge) {
                last.acknowledge();
            }
            System.out.println("OK hold-many " + received);
            return received == count ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    /** A plain Xid, as a transaction manager makes them. */
    private static final class ProbeXid implements javax.transaction.xa.Xid {
        private final byte[] global;
        private final byte[] branch;

        ProbeXid(int n) {
            this.global = ("probe-global-" + n).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            this.branch = ("branch-" + n).getBytes(java.nio.charset.StandardCharsets.UTF_8);
        }

        @Override
        public int getFormatId() {
            return 4242;
        }

        @Override
        public byte[] getGlobalTransactionId() {
            return global.clone();
        }

        @Override
        public byte[] getBranchQualifier() {
            return branch.clone();
        }
    }

    private static int xa(String url, String dest) throws Exception {
        org.apache.activemq.ActiveMQXAConnectionFactory factory = new org.apache.activemq.ActiveMQXAConnectionFactory(url);
        javax.jms.XAConnection connection = factory.createXAConnection();
        try {
            connection.start();
            javax.jms.XASession xaSession = connection.createXASession();
            javax.transaction.xa.XAResource resource = xaSession.getXAResource();
            Session session = xaSession.getSession();
            Destination destination = destination(session, dest);
            MessageProducer producer = session.createProducer(destination);
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            int noFlags = javax.transaction.xa.XAResource.TMNOFLAGS;
            int success = javax.transaction.xa.XAResource.TMSUCCESS;

            ProbeXid twoPhase = new ProbeXid(1);
            resource.start(twoPhase, noFlags);
            producer.send(session.createTextMessage("xa-2pc"));
            resource.end(twoPhase, success);
            int vote = resource.prepare(twoPhase);
            resource.commit(twoPhase, false);
            System.out.println("OK two-phase vote=" + vote);

            ProbeXid rolledBack = new ProbeXid(2);
            resource.start(rolledBack, noFlags);
            producer.send(session.createTextMessage("xa-rolled-back"));
            resource.end(rolledBack, success);
            resource.prepare(rolledBack);
            resource.rollback(rolledBack);
            System.out.println("OK rollback");

            ProbeXid onePhase = new ProbeXid(3);
            resource.start(onePhase, noFlags);
            producer.send(session.createTextMessage("xa-1pc"));
            resource.end(onePhase, success);
            resource.commit(onePhase, true);
            System.out.println("OK one-phase");

            ProbeXid recovered = new ProbeXid(4);
            resource.start(recovered, noFlags);
            producer.send(session.createTextMessage("xa-recovered"));
            resource.end(recovered, success);
            resource.prepare(recovered);
            javax.transaction.xa.Xid[] found = resource.recover(
                    javax.transaction.xa.XAResource.TMSTARTRSCAN | javax.transaction.xa.XAResource.TMENDRSCAN);
            boolean listed = false;
            for (javax.transaction.xa.Xid xid : found) {
                listed |= xid.getFormatId() == 4242
                        && java.util.Arrays.equals(xid.getGlobalTransactionId(), recovered.getGlobalTransactionId())
                        && java.util.Arrays.equals(xid.getBranchQualifier(), recovered.getBranchQualifier());
            }
            resource.commit(recovered, false);
            System.out.println("OK recover found=" + found.length + " listed=" + listed);

            ProbeXid readOnly = new ProbeXid(5);
            resource.start(readOnly, noFlags);
            resource.end(readOnly, success);
            System.out.println("OK read-only vote=" + resource.prepare(readOnly));

            MessageConsumer consumer = session.createConsumer(destination);
            ProbeXid receiveRolledBack = new ProbeXid(6);
            resource.start(receiveRolledBack, noFlags);
            Message first = consumer.receive(5000);
            resource.end(receiveRolledBack, success);
            resource.rollback(receiveRolledBack);
            if (first == null) {
                System.out.println("FAIL xa: nothing received");
                return 1;
            }
            print(first);
            ProbeXid receiveCommitted = new ProbeXid(7);
            resource.start(receiveCommitted, noFlags);
            Message again = consumer.receive(5000);
            resource.end(receiveCommitted, success);
            resource.prepare(receiveCommitted);
            resource.commit(receiveCommitted, false);
            if (again == null) {
                System.out.println("FAIL xa: nothing received again");
                return 1;
            }
            print(again);
            consumer.close();
            System.out.println("OK receive");

            try {
                resource.commit(new ProbeXid(99), false);
                System.out.println("FAIL xa: unknown Xid committed");
                return 1;
            } catch (javax.transaction.xa.XAException e) {
                System.out.println("OK unknown " + e.getClass().getName());
            }
            return 0;
        } finally {
            connection.close();
        }
    }

    private static Message sendInGroup(Session session, MessageProducer producer, String text, int seq)
            throws JMSException {
        TextMessage message = session.createTextMessage(text);
        message.setStringProperty("JMSXGroupID", "G");
        message.setIntProperty("JMSXGroupSeq", seq);
        producer.send(message);
        return message;
    }

    private static int groupClose(ActiveMQConnectionFactory factory, String dest) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session[] sessions = {
                connection.createSession(false, Session.CLIENT_ACKNOWLEDGE),
                connection.createSession(false, Session.CLIENT_ACKNOWLEDGE),
            };
            MessageConsumer[] consumers = {
                sessions[0].createConsumer(destination(sessions[0], dest)),
                sessions[1].createConsumer(destination(sessions[1], dest)),
            };
            Session producing = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageProducer producer = producing.createProducer(destination(producing, dest));
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            sendInGroup(producing, producer, "g-1", 1);
            int owner = -1;
            Message first = null;
            for (int c = 0; c < 2 && first == null; c++) {
                first = consumers[c].receive(1500);
                owner = c;
            }
            if (first == null) {
                System.out.println("FAIL group-close: nothing received");
                return 1;
            }
            first.acknowledge();
            int other = 1 - owner;
            sendInGroup(producing, producer, "g-2", 2);
            Message second = consumers[owner].receive(3000);
            boolean sticky = second != null && consumers[other].receiveNoWait() == null;
            if (second != null) {
                second.acknowledge();
            }
            sendInGroup(producing, producer, "g-close", -1);
            Message closing = consumers[owner].receive(3000);
            // Not acknowledged: the owner's prefetch of 1 is full from here on.
            sendInGroup(producing, producer, "g-new", 1);
            Message moved = consumers[other].receive(3000);
            boolean ok = closing != null && moved != null && "g-new".equals(((TextMessage) moved).getText());
            if (moved != null) {
                moved.acknowledge();
            }
            if (closing != null) {
                closing.acknowledge();
            }
            System.out.println("OK group-close owner=" + (owner + 1) + " sticky=" + sticky + " moved=" + ok);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int secure(ActiveMQConnectionFactory factory, String[] ops) throws JMSException {
        Connection connection;
        Session session;
        try {
            connection = factory.createConnection();
            connection.start();
            session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        } catch (JMSException e) {
            System.out.println("REFUSED " + e.getClass().getName() + ": " + e.getMessage());
            return 0;
        }
        boolean sessions = false;
        for (String op : ops) {
            sessions |= op.startsWith("session:");
        }
        if (sessions) {
            // SessionInfo is sent without waiting: a refusal reaches the exception listener.
            connection.setExceptionListener(e -> System.out.println("ASYNC " + e.getMessage()));
        }
        try {
            for (String op : ops) {
                try {
                    if (op.startsWith("session:")) {
                        // One more session, kept open, with a consumer on the destination.
                        Session extra = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
                        extra.createConsumer(destination(extra, op.substring("session:".length())));
                    } else {
                        secureOp(session, op);
                    }
                    System.out.println("OK " + op);
                } catch (JMSException e) {
                    System.out.println("DENIED " + op + " " + e.getClass().getName() + ": " + e.getMessage());
                }
            }
            if (sessions) {
                try {
                    Thread.sleep(300); // the exception listener runs on its own thread
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return 0;
        } finally {
            connection.close();
        }
    }

    private static void secureOp(Session session, String op) throws JMSException {
        String[] parts = op.split(":", 2);
        switch (parts[0]) {
            case "send": {
                MessageProducer producer = session.createProducer(null);
                producer.setDeliveryMode(DeliveryMode.PERSISTENT);
                producer.send(destination(session, parts[1]), session.createTextMessage("secure"));
                producer.close();
                break;
            }
            case "produce":
                session.createProducer(destination(session, parts[1])).close();
                break;
            case "open":
                // A consumer kept open until the connection closes (per-connection limits).
                session.createConsumer(destination(session, parts[1]));
                break;
            case "consume": {
                MessageConsumer consumer = session.createConsumer(destination(session, parts[1]));
                Message message = consumer.receive(2000);
                if (message != null) {
                    print(message);
                }
                consumer.close();
                break;
            }
            case "browse": {
                Enumeration<?> seen = session.createBrowser(session.createQueue(parts[1])).getEnumeration();
                while (seen.hasMoreElements()) {
                    print((Message) seen.nextElement());
                }
                break;
            }
            case "temp-queue": {
                TemporaryQueue temp = session.createTemporaryQueue();
                MessageConsumer consumer = session.createConsumer(temp);
                session.createProducer(temp).send(session.createTextMessage("temp"));
                Message message = consumer.receive(2000);
                if (message == null) {
                    throw new JMSException("nothing came back through the temporary queue");
                }
                print(message);
                consumer.close();
                temp.delete();
                break;
            }
            default:
                throw new IllegalArgumentException("unknown op " + op);
        }
    }

    private static int rollbackForever(ActiveMQConnectionFactory factory, String dest, long timeoutMs)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(true, Session.SESSION_TRANSACTED);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            int deliveries = 0;
            while (true) {
                Message message = consumer.receive(timeoutMs);
                if (message == null) {
                    break;
                }
                deliveries++;
                print(message);
                session.rollback();
            }
            System.out.println("OK rollback-forever " + deliveries);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int durable(ActiveMQConnectionFactory factory, String clientId, String topicName, String sub,
            long timeoutMs, int count) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.setClientID(clientId);
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            TopicSubscriber subscriber = session.createDurableSubscriber(session.createTopic(topicName), sub);
            int received = 0;
            while (received < count) {
                Message message = subscriber.receive(timeoutMs);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            subscriber.close();
            System.out.println("OK durable " + received);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int failoverRoundtrip(ActiveMQConnectionFactory factory, String dest) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Destination destination = destination(session, dest);
            MessageProducer producer = session.createProducer(destination);
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            producer.send(session.createTextMessage("before"));
            System.out.println("OK phase1");
            System.out.flush();
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
            producer.send(session.createTextMessage("after"));
            MessageConsumer consumer = session.createConsumer(destination);
            int received = 0;
            for (int i = 0; i < 2; i++) {
                Message message = consumer.receive(20000);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK failover-roundtrip " + received);
            return received == 2 ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static int request(ActiveMQConnectionFactory factory, String dest, String text, long timeoutMs)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            TemporaryQueue replies = session.createTemporaryQueue();
            MessageConsumer consumer = session.createConsumer(replies);
            TextMessage message = session.createTextMessage(text);
            message.setJMSReplyTo(replies);
            message.setJMSCorrelationID("req-1");
            session.createProducer(destination(session, dest)).send(message);
            Message reply = consumer.receive(timeoutMs);
            if (reply == null) {
                System.out.println("FAIL request: no reply");
                return 1;
            }
            print(reply);
            System.out.println("OK request");
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int respond(ActiveMQConnectionFactory factory, String dest, long timeoutMs) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            System.out.println("OK listening");
            System.out.flush();
            Message request = consumer.receive(timeoutMs);
            if (request == null || request.getJMSReplyTo() == null) {
                System.out.println("FAIL respond: no request with a reply-to");
                return 1;
            }
            print(request);
            TextMessage reply = session.createTextMessage("reply:" + ((TextMessage) request).getText());
            reply.setJMSCorrelationID(request.getJMSCorrelationID());
            session.createProducer(request.getJMSReplyTo()).send(reply);
            System.out.println("OK respond " + request.getJMSReplyTo());
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int clientAckRecover(ActiveMQConnectionFactory factory, String dest) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            Message first = consumer.receive(5000);
            if (first == null) {
                System.out.println("FAIL client-ack-recover: nothing received");
                return 1;
            }
            print(first);
            session.recover();
            Message again = consumer.receive(5000);
            if (again == null) {
                System.out.println("FAIL client-ack-recover: nothing after recover");
                return 1;
            }
            print(again);
            again.acknowledge();
            System.out.println("OK client-ack-recover");
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int individualAck(ActiveMQConnectionFactory factory, String dest, int count, int index)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, org.apache.activemq.ActiveMQSession.INDIVIDUAL_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(destination(session, dest));
            int received = 0;
            while (received < count) {
                Message message = consumer.receive(5000);
                if (message == null) {
                    break;
                }
                print(message);
                if (received == index) {
                    message.acknowledge();
                }
                received++;
            }
            System.out.println("OK individual-ack " + received);
            return received == count ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static int noLocal(ActiveMQConnectionFactory factory, String topicName) throws JMSException {
        Connection own = factory.createConnection();
        Connection other = factory.createConnection();
        try {
            own.start();
            other.start();
            Session session = own.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Topic topic = session.createTopic(topicName);
            MessageConsumer consumer = session.createConsumer(topic, null, true);
            session.createProducer(topic).send(session.createTextMessage("own"));
            Session otherSession = other.createSession(false, Session.AUTO_ACKNOWLEDGE);
            otherSession.createProducer(otherSession.createTopic(topicName))
                    .send(otherSession.createTextMessage("other"));
            int received = 0;
            while (true) {
                Message message = consumer.receive(1500);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK nolocal " + received);
            return 0;
        } finally {
            own.close();
            other.close();
        }
    }

    private static int hold(ActiveMQConnectionFactory factory, String dest) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
            Message message = session.createConsumer(destination(session, dest)).receive(10000);
            if (message == null) {
                System.out.println("FAIL hold: nothing received");
                return 1;
            }
            print(message);
            System.out.println("OK hold");
            System.out.flush();
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
            return 0;
        } finally {
            try {
                connection.close();
            } catch (JMSException ignored) {
                // the broker may be gone
            }
        }
    }

    private static int browse(ActiveMQConnectionFactory factory, String queueName, String selector)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            javax.jms.QueueBrowser browser = selector == null
                    ? session.createBrowser(session.createQueue(queueName))
                    : session.createBrowser(session.createQueue(queueName), selector);
            int seen = 0;
            for (Enumeration<?> e = browser.getEnumeration(); e.hasMoreElements();) {
                print((Message) e.nextElement());
                seen++;
            }
            browser.close();
            System.out.println("OK browse " + seen);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int groups(ActiveMQConnectionFactory factory, String dest) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session first = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Session second = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer[] consumers = {
                first.createConsumer(destination(first, dest)),
                second.createConsumer(destination(second, dest)),
            };
            Session producing = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageProducer producer = producing.createProducer(destination(producing, dest));
            for (int i = 0; i < 6; i++) {
                TextMessage message = producing.createTextMessage("g-" + i);
                message.setStringProperty("JMSXGroupID", i % 2 == 0 ? "A" : "B");
                producer.send(message);
            }
            int received = 0;
            for (int c = 0; c < 2; c++) {
                while (true) {
                    Message message = consumers[c].receive(1500);
                    if (message == null) {
                        break;
                    }
                    System.out.println("GROUP consumer=" + (c + 1) + " group=" + message.getStringProperty("JMSXGroupID"));
                    received++;
                }
            }
            System.out.println("OK groups " + received);
            return received == 6 ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static int pubsub(ActiveMQConnectionFactory factory, String topicName, String text)
            throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Topic topic = session.createTopic(topicName);
            MessageConsumer consumer = session.createConsumer(topic);
            MessageProducer producer = session.createProducer(topic);
            producer.send(session.createTextMessage(text));
            Message message = consumer.receive(10000);
            if (message == null) {
                System.out.println("FAIL pubsub: nothing received");
                return 1;
            }
            print(message);
            System.out.println("OK pubsub");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** Every message type, every property type, acks, a transaction, a temporary queue, a durable
     *  subscription, a pulling consumer, compression and a refused duplicate client id. */
    private static int capture(ActiveMQConnectionFactory factory, boolean noPull) throws Exception {
        ActiveMQConnection connection = (ActiveMQConnection) factory.createConnection();
        connection.setClientID("capture-client");
        connection.start();

        Session session = connection.createSession(false, Session.CLIENT_ACKNOWLEDGE);
        Queue queue = session.createQueue("capture.queue");
        MessageProducer producer = session.createProducer(queue);
        MessageConsumer consumer = session.createConsumer(queue);

        TextMessage text = session.createTextMessage("hello \u00e9\u4e2d\ud83d\ude00 \u0000end");
        text.setBooleanProperty("p_bool", true);
        text.setByteProperty("p_byte", (byte) -7);
        text.setShortProperty("p_short", (short) -300);
        text.setIntProperty("p_int", 123456789);
        text.setLongProperty("p_long", -1234567890123L);
        text.setFloatProperty("p_float", 1.5f);
        text.setDoubleProperty("p_double", -2.25);
        text.setStringProperty("p_string", "str \ud83d\ude00");
        text.setJMSCorrelationID("corr-1");
        text.setJMSType("probe-type");
        text.setJMSReplyTo(session.createTopic("capture.replies"));
        text.setStringProperty("JMSXGroupID", "group-a");
        text.setIntProperty("JMSXGroupSeq", 1);
        producer.setPriority(7);
        producer.setTimeToLive(600000);
        producer.send(text);
        producer.setPriority(4);
        producer.setTimeToLive(0);

        BytesMessage bytes = session.createBytesMessage();
        bytes.writeBytes(new byte[] {0, 1, 2, (byte) 0xff});
        bytes.writeInt(42);
        producer.setDeliveryMode(DeliveryMode.NON_PERSISTENT);
        producer.send(bytes);
        producer.setDeliveryMode(DeliveryMode.PERSISTENT);

        MapMessage map = session.createMapMessage();
        map.setBoolean("m_bool", false);
        map.setByte("m_byte", (byte) 1);
        map.setChar("m_char", 'x');
        map.setShort("m_short", (short) 2);
        map.setInt("m_int", 3);
        map.setLong("m_long", 4L);
        map.setFloat("m_float", 5.5f);
        map.setDouble("m_double", 6.5);
        map.setString("m_string", "seven");
        map.setBytes("m_bytes", new byte[] {8, 9});
        producer.send(map);

        StreamMessage stream = session.createStreamMessage();
        stream.writeBoolean(true);
        stream.writeByte((byte) 1);
        stream.writeChar('y');
        stream.writeShort((short) 2);
        stream.writeInt(3);
        stream.writeLong(4L);
        stream.writeFloat(5.5f);
        stream.writeDouble(6.5);
        stream.writeString("seven");
        stream.writeBytes(new byte[] {8, 9});
        stream.writeObject(null);
        producer.send(stream);

        ArrayList<String> list = new ArrayList<>();
        list.add("object");
        ObjectMessage object = session.createObjectMessage((Serializable) list);
        producer.send(object);

        Message plain = session.createMessage();
        plain.setStringProperty("only", "headers");
        producer.send(plain);

        connection.setUseCompression(true);
        TextMessage compressed = session.createTextMessage("compressed compressed compressed compressed");
        producer.send(compressed);
        connection.setUseCompression(false);

        for (int i = 0; i < 7; i++) {
            Message message = consumer.receive(10000);
            if (message == null) {
                System.out.println("FAIL capture: message " + i + " not received");
                return 1;
            }
            print(message);
            message.acknowledge();
        }
        consumer.close();
        producer.close();

        // A transacted session: commit, then rollback and redelivery, then commit.
        Session tx = connection.createSession(true, Session.SESSION_TRANSACTED);
        Queue txQueue = tx.createQueue("capture.tx");
        MessageProducer txProducer = tx.createProducer(txQueue);
        txProducer.send(tx.createTextMessage("tx-1"));
        tx.commit();
        MessageConsumer txConsumer = tx.createConsumer(txQueue);
        Message first = txConsumer.receive(10000);
        tx.rollback();
        Message again = txConsumer.receive(10000);
        tx.commit();
        if (first == null || again == null || !again.getJMSRedelivered()) {
            System.out.println("FAIL capture: transaction rollback did not redeliver");
            return 1;
        }
        print(again);
        txConsumer.close();
        tx.close();

        // A temporary queue as reply-to.
        Session auto = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
        TemporaryQueue temp = auto.createTemporaryQueue();
        MessageConsumer replies = auto.createConsumer(temp);
        TextMessage request = auto.createTextMessage("request");
        request.setJMSReplyTo(temp);
        auto.createProducer(temp).send(request);
        Message reply = replies.receive(10000);
        if (reply == null) {
            System.out.println("FAIL capture: temporary queue message not received");
            return 1;
        }
        print(reply);
        replies.close();
        temp.delete();

        // A durable subscription, unsubscribed at the end.
        Topic topic = auto.createTopic("capture.topic");
        TopicSubscriber durable = auto.createDurableSubscriber(topic, "capture-sub", "p_int > 1", false);
        TextMessage published = auto.createTextMessage("published");
        published.setIntProperty("p_int", 2);
        auto.createProducer(topic).send(published);
        Message got = durable.receive(10000);
        if (got == null) {
            System.out.println("FAIL capture: durable subscriber got nothing");
            return 1;
        }
        print(got);
        durable.close();
        auto.unsubscribe("capture-sub");

        // A consumer with prefetch 0 pulls (MessagePull, OpenWire 2 and later).
        if (!noPull) {
            Queue pullQueue = auto.createQueue("capture.pull?consumer.prefetchSize=0");
            auto.createProducer(pullQueue).send(auto.createTextMessage("pulled"));
            MessageConsumer puller = auto.createConsumer(pullQueue);
            Message pulled = puller.receive(10000);
            if (pulled == null) {
                System.out.println("FAIL capture: pull consumer got nothing");
                return 1;
            }
            print(pulled);
            puller.close();
        }

        // A second connection with the same client id is refused (ExceptionResponse).
        Connection duplicate = factory.createConnection();
        try {
            duplicate.setClientID("capture-client");
            duplicate.start();
            System.out.println("FAIL capture: duplicate client id accepted");
            return 1;
        } catch (JMSException expected) {
            System.out.println("OK refused " + expected.getClass().getName() + ": " + expected.getMessage());
        } finally {
            try {
                duplicate.close();
            } catch (JMSException ignored) {
                // already closed by the refusal
            }
        }

        connection.close();
        System.out.println("OK capture");
        return 0;
    }

    private static void print(Message message) throws JMSException {
        StringBuilder line = new StringBuilder("RECEIVED type=");
        String type = message.getClass().getSimpleName();
        line.append(type);
        line.append(" text=");
        if (message instanceof TextMessage) {
            line.append(escape(((TextMessage) message).getText()));
        } else {
            line.append('-');
        }
        line.append(" redelivered=").append(message.getJMSRedelivered());
        line.append(" persistent=").append(message.getJMSDeliveryMode() == DeliveryMode.PERSISTENT);
        line.append(" priority=").append(message.getJMSPriority());
        line.append(" correlation=").append(message.getJMSCorrelationID());
        line.append(" props=");
        ArrayList<String> names = new ArrayList<>();
        for (Enumeration<?> e = message.getPropertyNames(); e.hasMoreElements();) {
            names.add((String) e.nextElement());
        }
        java.util.Collections.sort(names);
        for (String name : names) {
            Object value = message.getObjectProperty(name);
            line.append(name).append('=')
                    .append(value == null ? "null" : value.getClass().getSimpleName() + ":" + escape(value.toString()))
                    .append(';');
        }
        System.out.println(line);
    }

    private static String escape(String text) {
        if (text == null) {
            return "null";
        }
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }
}
