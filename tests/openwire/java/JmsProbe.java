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
 * java JmsProbe URL send-keyed DEST TEXT N CUSTOMERS [HEX|- [NAME=VALUE...]]  send N persistent
 *                                               messages with the string property customerId "c<i % CUSTOMERS>",
 *                                               the int property seq i and each NAME=VALUE as a string property:
 *                                               TextMessages "TEXT-i", or BytesMessages of the bytes HEX then
 *                                               the byte i when HEX is given (not "-")
 * java JmsProbe URL receive-bodies DEST TIMEOUT_MS N  like receive, and after each RECEIVED line a line
 *                                               "BODY <hex>" (the bytes of a BytesMessage, the UTF-8 of a TextMessage)
 * java JmsProbe URL pubsub TOPIC TEXT           subscribe, publish TEXT to the topic, receive it
 * java JmsProbe URL receive-noack DEST TIMEOUT_MS N   CLIENT_ACKNOWLEDGE, receive N, never ack
 * java JmsProbe URL receive-selector DEST SELECTOR TIMEOUT_MS N   receive up to N matching SELECTOR
 * java JmsProbe URL rollback-forever DEST TIMEOUT_MS  transacted: receive and roll back until the
 *                                               client's redelivery policy gives up (poison ack)
 * java JmsProbe URL durable CLIENT_ID TOPIC SUB TIMEOUT_MS N   durable subscriber: receive up to N,
 *                                               close without unsubscribing
 * java JmsProbe URL failover-roundtrip DEST     (a failover: URL) send "before", print "OK phase1",
 *                                               wait for a line on stdin, send "after", receive both
 * java JmsProbe URL request DEST TEXT TIMEOUT_MS [temp-topic]   send TEXT with a temporary reply queue (or
 *                                               topic), await the reply
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
 * java JmsProbe URL exclusive QUEUE             an exclusive and a plain consumer: "EXCL consumer=<which> got=<text>"
 * java JmsProbe URL wildcards PREFIX            queue and topic consumers on PREFIX.q.*, PREFIX.q.>, PREFIX.t.*,
 *                                               PREFIX.t.>: "WILD consumer=<pattern> got=<text>"
 * java JmsProbe URL unsubscribe TOPIC           durable subscription closed, unsubscribed, published to, then
 *                                               subscribed again: "UNSUB got=<text>"
 * java JmsProbe URL tx-send-rollback QUEUE      a rolled-back and a committed transacted send: "TX got=<text>"
 * java JmsProbe URL compressed QUEUE            compressed BytesMessage and MapMessage round trip
 * java JmsProbe URL destroy QUEUE               destroyDestination: refused with a consumer, then deletes two messages
 * java JmsProbe URL temp-delete                a temporary queue with three messages, deleted with the connection open
 *                                               ("OK created", a line on stdin, "OK deleted", a line on stdin)
 * java JmsProbe URL send-nested DEST            one TextMessage "nested" with char, null, map and list properties
 * java JmsProbe URL priority QUEUE              consumer.priority=9 against a default consumer:
 *                                               "PRIO queue=<1|2> consumer=<high|low> got=<text>"
 * java JmsProbe URL pull-compete QUEUE          two prefetch-0 consumers, three messages: the one that receives
 *                                               gets all three, the idle one holds none back
 * java JmsProbe URL pull-timing QUEUE           receive(timeout) / receiveNoWait timings of a prefetch-0 consumer
 * java JmsProbe URL expire-held DEST TTL_MS     a consumer prefetches "expiring-p" (persistent), "expiring-n"
 *                                               (non-persistent), both with TTL_MS, and "fresh"; it receives
 *                                               after the TTL, so the client acks the two as EXPIRED
 * java JmsProbe URL errors                     an XPATH selector (consumer, browser), a malformed selector and a
 *                                               durable subscription on a composite topic: prints
 *                                               "ERROR <step> <exception class>: <message>" (or "ACCEPTED <step>"),
 *                                               then sends and receives "still-up" on the same connection
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
 * property names, then " || id=<JMSMessageID> jmstype=<JMSType> timestamp=<ms>
 * expiration=<ms> replyto=<destination> body=<body>" (body: "bytes:<hex>", "map:<name=Class:value,...>"
 * sorted, "stream:<Class:value,...>", "object:<Class:value>", or "-" for text and plain messages);
 * capture prints "SENT id=<JMSMessageID> timestamp=<ms> expiration=<ms>" after each of its first
 * seven sends. A step that works prints "OK <step>". Exit code 0 only when every step worked.
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
        // ObjectMessage bodies are read back (print): allow the JDK collection classes they carry.
        factory.setTrustedPackages(java.util.Arrays.asList("java.util", "java.lang"));
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
            case "send-keyed":
                rc = sendKeyed(factory, args[2], args[3], Integer.parseInt(args[4]), Integer.parseInt(args[5]),
                        args.length > 6 && !args[6].equals("-") ? args[6] : null,
                        java.util.Arrays.copyOfRange(args, Math.min(7, args.length), args.length));
                break;
            case "receive-bodies":
                rc = receiveBodies(factory, args[2], Long.parseLong(args[3]), Integer.parseInt(args[4]));
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
                rc = request(factory, args[2], args[3], Long.parseLong(args[4]),
                        args.length > 5 && args[5].equals("temp-topic"));
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
            case "errors":
                rc = errors(factory);
                break;
            case "expire-held":
                rc = expireHeld(factory, args[2], Long.parseLong(args[3]));
                break;
            case "pull-compete":
                rc = pullCompete(factory, args[2]);
                break;
            case "pull-timing":
                rc = pullTiming(factory, args[2]);
                break;
            case "exclusive":
                rc = exclusive(factory, args[2]);
                break;
            case "wildcards":
                rc = wildcards(factory, args[2]);
                break;
            case "unsubscribe":
                rc = unsubscribe(factory, args[2]);
                break;
            case "tx-send-rollback":
                rc = txSendRollback(factory, args[2]);
                break;
            case "compressed":
                rc = compressed(factory, args[2]);
                break;
            case "priority":
                rc = priority(factory, args[2]);
                break;
            case "send-nested":
                rc = sendNested(factory, args[2]);
                break;
            case "temp-delete":
                rc = tempDelete(factory);
                break;
            case "destroy":
                rc = destroy(factory, args[2]);
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

    private static int sendKeyed(ActiveMQConnectionFactory factory, String dest, String text, int count,
            int customers, String hex, String[] extra) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageProducer producer = session.createProducer(destination(session, dest));
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            byte[] prefix = hex == null ? null : fromHex(hex);
            for (int i = 0; i < count; i++) {
                Message message;
                if (prefix == null) {
                    message = session.createTextMessage(text + "-" + i);
                } else {
                    BytesMessage bytes = session.createBytesMessage();
                    bytes.writeBytes(prefix);
                    bytes.writeByte((byte) i);
                    message = bytes;
                }
                message.setStringProperty("customerId", "c" + (i % customers));
                message.setIntProperty("seq", i);
                for (String pair : extra) {
                    int eq = pair.indexOf('=');
                    message.setStringProperty(pair.substring(0, eq), pair.substring(eq + 1));
                }
                producer.send(message);
            }
            System.out.println("OK send-keyed " + count);
            return 0;
        } finally {
            connection.close();
        }
    }

    private static int receiveBodies(ActiveMQConnectionFactory factory, String dest, long timeoutMs, int count)
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
                byte[] body;
                if (message instanceof BytesMessage) {
                    BytesMessage bytes = (BytesMessage) message;
                    body = new byte[(int) bytes.getBodyLength()];
                    bytes.readBytes(body);
                } else if (message instanceof TextMessage) {
                    String t = ((TextMessage) message).getText();
                    body = t == null ? new byte[0] : t.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                } else {
                    body = new byte[0];
                }
                System.out.println("BODY " + toHex(body));
                received++;
            }
            System.out.println("OK receive-bodies " + received);
            return received == count ? 0 : 1;
        } finally {
            connection.close();
        }
    }

    private static byte[] fromHex(String hex) {
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    private static String toHex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            out.append(String.format("%02x", b & 0xff));
        }
        return out.toString();
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

    /** An exclusive consumer and a plain one on QUEUE: four messages all go to the exclusive one; once it
     *  closes, two more go to the other. Prints "EXCL consumer=<exclusive|plain> got=<text>". */
    private static int exclusive(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session s1 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Session s2 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer first = s1.createConsumer(s1.createQueue(queueName + "?consumer.exclusive=true"));
            MessageConsumer plain = s2.createConsumer(s2.createQueue(queueName));
            MessageProducer producer = s1.createProducer(s1.createQueue(queueName));
            for (int i = 0; i < 4; i++) {
                producer.send(s1.createTextMessage("x-" + i));
            }
            drain("EXCL consumer=exclusive", first, 1500);
            drain("EXCL consumer=plain", plain, 500);
            first.close();
            for (int i = 4; i < 6; i++) {
                producer.send(s1.createTextMessage("x-" + i));
            }
            drain("EXCL consumer=plain", plain, 1500);
            System.out.println("OK exclusive");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** Prints "PREFIX got=<text>" for each message until none comes within TIMEOUT_MS; returns the count. */
    private static int drain(String prefix, MessageConsumer consumer, long timeoutMs) throws JMSException {
        int n = 0;
        while (true) {
            Message message = consumer.receive(timeoutMs);
            if (message == null) {
                return n;
            }
            System.out.println(prefix + " got=" + ((TextMessage) message).getText());
            n++;
        }
    }

    /** Wildcard consumers under PREFIX: queue PREFIX.q.* then PREFIX.q.> take what waits in PREFIX.q.a,
     *  PREFIX.q.b and PREFIX.q.a.b; topic subscribers PREFIX.t.* and PREFIX.t.> see publishes to PREFIX.t.a
     *  and PREFIX.t.a.b. Prints "WILD consumer=<pattern> got=<text>". */
    private static int wildcards(ActiveMQConnectionFactory factory, String prefix) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageProducer producer = session.createProducer(null);
            for (String name : new String[] {"q.a", "q.b", "q.a.b"}) {
                producer.send(session.createQueue(prefix + "." + name), session.createTextMessage(name));
            }
            MessageConsumer one = session.createConsumer(session.createQueue(prefix + ".q.*"));
            drain("WILD consumer=queue." + "*", one, 1500);
            one.close();
            MessageConsumer all = session.createConsumer(session.createQueue(prefix + ".q.>"));
            drain("WILD consumer=queue.>", all, 1500);
            all.close();
            MessageConsumer topicOne = session.createConsumer(session.createTopic(prefix + ".t.*"));
            MessageConsumer topicAll = session.createConsumer(session.createTopic(prefix + ".t.>"));
            for (String name : new String[] {"t.a", "t.a.b"}) {
                producer.send(session.createTopic(prefix + "." + name), session.createTextMessage(name));
            }
            drain("WILD consumer=topic." + "*", topicOne, 1500);
            drain("WILD consumer=topic.>", topicAll, 1500);
            System.out.println("OK wildcards");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** A durable subscription on TOPIC, closed, then unsubscribed; "lost" is published; the same name
     *  subscribes again and "kept" is published. Prints "UNSUB got=<text>" per message received. */
    private static int unsubscribe(ActiveMQConnectionFactory factory, String topicName) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.setClientID("unsubscribe-client");
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Topic topic = session.createTopic(topicName);
            MessageProducer producer = session.createProducer(topic);
            session.createDurableSubscriber(topic, "sub").close();
            producer.send(session.createTextMessage("kept-while-closed"));
            session.unsubscribe("sub");
            producer.send(session.createTextMessage("lost"));
            TopicSubscriber again = session.createDurableSubscriber(topic, "sub");
            producer.send(session.createTextMessage("kept"));
            int n = drain("UNSUB", again, 1500);
            again.close();
            session.unsubscribe("sub");
            System.out.println("OK unsubscribe " + n);
            return 0;
        } finally {
            connection.close();
        }
    }

    /** A transacted session sends "rolled-back" and rolls back, sends "committed" and commits; an
     *  AUTO_ACKNOWLEDGE consumer then receives what reached QUEUE. */
    private static int txSendRollback(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session tx = connection.createSession(true, Session.SESSION_TRANSACTED);
            MessageProducer producer = tx.createProducer(tx.createQueue(queueName));
            producer.send(tx.createTextMessage("rolled-back"));
            tx.rollback();
            producer.send(tx.createTextMessage("committed"));
            tx.commit();
            Session auto = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            int n = drain("TX", auto.createConsumer(auto.createQueue(queueName)), 1500);
            System.out.println("OK tx-send-rollback " + n);
            return 0;
        } finally {
            connection.close();
        }
    }

    /** With jms.useCompression: a BytesMessage (2000 bytes of a repeating pattern) and a MapMessage
     *  (a long repetitive string, an int, bytes) sent to QUEUE and received back. */
    private static int compressed(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        ActiveMQConnection connection = (ActiveMQConnection) factory.createConnection();
        try {
            connection.setUseCompression(true);
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Queue queue = session.createQueue(queueName);
            MessageProducer producer = session.createProducer(queue);
            BytesMessage bytes = session.createBytesMessage();
            byte[] data = new byte[2000];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i % 7);
            }
            bytes.writeBytes(data);
            producer.send(bytes);
            MapMessage map = session.createMapMessage();
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < 100; i++) {
                text.append("abcabc");
            }
            map.setString("long", text.toString());
            map.setInt("n", 42);
            map.setBytes("raw", new byte[] {1, 2, 3});
            producer.send(map);
            MessageConsumer consumer = session.createConsumer(queue);
            for (int i = 0; i < 2; i++) {
                Message message = consumer.receive(5000);
                if (message == null) {
                    System.out.println("FAIL compressed: message " + i + " not received");
                    return 1;
                }
                print(message);
            }
            System.out.println("OK compressed");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** ActiveMQConnection.destroyDestination on QUEUE: refused while a consumer reads it ("ERROR busy
     *  <class>"), then, with two messages waiting and no consumer, it deletes them: a new consumer
     *  receives nothing ("OK destroy <received>"). */
    private static int destroy(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        ActiveMQConnection connection = (ActiveMQConnection) factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            org.apache.activemq.command.ActiveMQQueue queue = new org.apache.activemq.command.ActiveMQQueue(queueName);
            MessageProducer producer = session.createProducer(queue);
            MessageConsumer reader = session.createConsumer(queue);
            try {
                connection.destroyDestination(queue);
                System.out.println("ACCEPTED busy");
            } catch (JMSException e) {
                System.out.println("ERROR busy " + e.getClass().getName() + ": " + e.getMessage());
            }
            reader.close();
            producer.send(session.createTextMessage("d-0"));
            producer.send(session.createTextMessage("d-1"));
            connection.destroyDestination(queue);
            int received = drain("DESTROY", session.createConsumer(queue), 1000);
            System.out.println("OK destroy " + received);
            return 0;
        } finally {
            connection.close();
        }
    }

    /** A temporary queue holding three messages of 30 KB, deleted while the connection stays open: prints
     *  "OK created", waits for a line on stdin, deletes it, prints "OK deleted", waits for a line. */
    private static int tempDelete(ActiveMQConnectionFactory factory) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            TemporaryQueue temp = session.createTemporaryQueue();
            MessageProducer producer = session.createProducer(temp);
            for (int i = 0; i < 3; i++) {
                producer.send(session.createTextMessage("t-" + i + "-" + "x".repeat(30000)));
            }
            java.io.BufferedReader stdin = new java.io.BufferedReader(new java.io.InputStreamReader(System.in));
            System.out.println("OK created");
            System.out.flush();
            stdin.readLine();
            temp.delete();
            System.out.println("OK deleted");
            System.out.flush();
            stdin.readLine();
            return 0;
        } finally {
            connection.close();
        }
    }

    /** The property values ActiveMQ allows beyond the JMS types: a char, null, a nested map and a list. */
    private static void setNestedProperties(Message message) throws JMSException {
        message.setObjectProperty("p_char", Character.valueOf('c'));
        message.setObjectProperty("p_null", null);
        java.util.TreeMap<String, Object> nested = new java.util.TreeMap<>();
        nested.put("k", 1);
        nested.put("s", "v");
        message.setObjectProperty("p_map", nested);
        ArrayList<Object> items = new ArrayList<>();
        items.add(1);
        items.add("two");
        message.setObjectProperty("p_list", items);
    }

    /** Sends one persistent TextMessage "nested" with the properties of setNestedProperties. */
    private static int sendNested(ActiveMQConnectionFactory factory, String dest) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            TextMessage message = session.createTextMessage("nested");
            setNestedProperties(message);
            session.createProducer(destination(session, dest)).send(message);
            System.out.println("OK send-nested");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** Consumer priority on QUEUE.1 and QUEUE.2: a consumer with consumer.priority=9 and a default one.
     *  On QUEUE.1 (default prefetch) six messages all go to the high one; on QUEUE.2 the high one has
     *  prefetch 2 and never consumes, so the other four go to the low one. Prints
     *  "PRIO queue=<1|2> consumer=<high|low> got=<text>" (the low consumer drained first). */
    private static int priority(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            String[] highOptions = {"?consumer.priority=9", "?consumer.priority=9&consumer.prefetchSize=2"};
            for (int q = 1; q <= 2; q++) {
                String name = queueName + "." + q;
                Session s1 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
                Session s2 = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
                MessageConsumer low = s2.createConsumer(s2.createQueue(name));
                MessageConsumer high = s1.createConsumer(s1.createQueue(name + highOptions[q - 1]));
                MessageProducer producer = s1.createProducer(s1.createQueue(name));
                for (int i = 0; i < 6; i++) {
                    producer.send(s1.createTextMessage("p-" + i));
                }
                Thread.sleep(300);
                drain("PRIO queue=" + q + " consumer=low", low, 1000);
                drain("PRIO queue=" + q + " consumer=high", high, 1000);
                s1.close();
                s2.close();
            }
            System.out.println("OK priority");
            return 0;
        } finally {
            connection.close();
        }
    }

    /** Two prefetch-0 consumers of one queue (on two connections); only the first receives:
     *  prints "PULL consumer=<1|2> got=<text>" per message, then "OK pull-compete <n1> <n2>". */
    private static int pullCompete(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        Connection first = factory.createConnection();
        Connection second = factory.createConnection();
        try {
            first.start();
            second.start();
            Session s1 = first.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Session s2 = second.createSession(false, Session.AUTO_ACKNOWLEDGE);
            String name = queueName + "?consumer.prefetchSize=0";
            MessageConsumer c1 = s1.createConsumer(s1.createQueue(name));
            MessageConsumer idle = s2.createConsumer(s2.createQueue(name));
            MessageProducer producer = s1.createProducer(s1.createQueue(queueName));
            for (int i = 0; i < 3; i++) {
                producer.send(s1.createTextMessage("c-" + i));
            }
            // The idle consumer never pulls: it must hold nothing back from the first.
            Thread.sleep(300);
            int n1 = 0;
            while (true) {
                Message message = c1.receive(1500);
                if (message == null) {
                    break;
                }
                System.out.println("PULL consumer=1 got=" + ((TextMessage) message).getText());
                n1++;
            }
            int n2 = 0;
            Message late = idle.receive(500);
            if (late != null) {
                System.out.println("PULL consumer=2 got=" + ((TextMessage) late).getText());
                n2++;
            }
            System.out.println("OK pull-compete " + n1 + " " + n2);
            return 0;
        } finally {
            first.close();
            second.close();
        }
    }

    /** A prefetch-0 consumer's receive timings: prints "PULL step=<name> got=<text|null> ms=<elapsed>"
     *  for receive(500) on an empty queue (twice), receive(5000) with a message sent 700 ms into it,
     *  receiveNoWait() on an empty queue, receiveNoWait() with one message waiting, and a last
     *  receive(500) on the empty queue. */
    private static int pullTiming(ActiveMQConnectionFactory factory, String queueName) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            MessageConsumer consumer = session.createConsumer(session.createQueue(queueName + "?consumer.prefetchSize=0"));
            Session sending = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            final MessageProducer producer = sending.createProducer(sending.createQueue(queueName));
            timed("empty-1", () -> consumer.receive(500));
            timed("empty-2", () -> consumer.receive(500));
            Thread later = new Thread(() -> {
                try {
                    Thread.sleep(700);
                    producer.send(sending.createTextMessage("late"));
                } catch (Exception e) {
                    System.out.println("FAIL pull-timing send: " + e);
                }
            });
            later.start();
            timed("sent-during", () -> consumer.receive(5000));
            later.join();
            timed("nowait-empty", consumer::receiveNoWait);
            producer.send(sending.createTextMessage("waiting"));
            Thread.sleep(200);
            timed("nowait-waiting", consumer::receiveNoWait);
            timed("empty-3", () -> consumer.receive(500));
            System.out.println("OK pull-timing");
            return 0;
        } finally {
            connection.close();
        }
    }

    private interface Receive {
        Message run() throws JMSException;
    }

    private static void timed(String step, Receive receive) throws JMSException {
        long start = System.nanoTime();
        Message message = receive.run();
        long ms = (System.nanoTime() - start) / 1_000_000;
        String got = message == null ? "null" : ((TextMessage) message).getText();
        System.out.println("PULL step=" + step + " got=" + got + " ms=" + ms);
    }

    /** A message that expires in the consumer's prefetch buffer: the client skips it and sends an
     *  EXPIRED ack. Sends "expiring-p" (persistent) and "expiring-n" (non-persistent) with TTL_MS,
     *  then "fresh" without one, all prefetched at once; waits past the TTL, then receives. */
    private static int expireHeld(ActiveMQConnectionFactory factory, String dest, long ttlMs) throws Exception {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Destination destination = destination(session, dest);
            MessageConsumer consumer = session.createConsumer(destination);
            MessageProducer producer = session.createProducer(destination);
            producer.setTimeToLive(ttlMs);
            producer.send(session.createTextMessage("expiring-p"));
            producer.setDeliveryMode(DeliveryMode.NON_PERSISTENT);
            producer.send(session.createTextMessage("expiring-n"));
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            producer.setTimeToLive(0);
            producer.send(session.createTextMessage("fresh"));
            Thread.sleep(ttlMs + 500);
            int received = 0;
            while (true) {
                Message message = consumer.receive(1500);
                if (message == null) {
                    break;
                }
                print(message);
                received++;
            }
            System.out.println("OK expire-held " + received);
            return 0;
        } finally {
            connection.close();
        }
    }

    /** Refused operations and the exception classes the application sees; the connection goes on. */
    private static int errors(ActiveMQConnectionFactory factory) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.setClientID("errors-client");
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Queue queue = session.createQueue("errors.queue");
            // Valid for the client's parser, refused by the gateway's: the class comes from the
            // gateway's ExceptionResponse.
            expectFailure("xpath-selector", () -> session.createConsumer(queue, "XPATH '//order'"));
            expectFailure("xpath-browser", () -> session.createBrowser(queue, "XPATH '//order'").getEnumeration());
            expectFailure("bad-selector", () -> session.createConsumer(queue, "a ==="));
            expectFailure("durable-composite",
                    () -> session.createDurableSubscriber(session.createTopic("errors.a,errors.b"), "sub"));
            // The connection is still usable.
            session.createProducer(queue).send(session.createTextMessage("still-up"));
            Message message = session.createConsumer(queue).receive(5000);
            if (message == null) {
                System.out.println("FAIL errors: nothing received after the refusals");
                return 1;
            }
            print(message);
            System.out.println("OK errors");
            return 0;
        } finally {
            connection.close();
        }
    }

    private interface JmsAction {
        void run() throws JMSException;
    }

    private static void expectFailure(String step, JmsAction action) {
        try {
            action.run();
            System.out.println("ACCEPTED " + step);
        } catch (JMSException e) {
            System.out.println("ERROR " + step + " " + e.getClass().getName() + ": " + e.getMessage());
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

    private static int request(ActiveMQConnectionFactory factory, String dest, String text, long timeoutMs,
            boolean tempTopic) throws JMSException {
        Connection connection = factory.createConnection();
        try {
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Destination replies = tempTopic ? session.createTemporaryTopic() : session.createTemporaryQueue();
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
        setNestedProperties(text);
        producer.setPriority(7);
        producer.setTimeToLive(600000);
        producer.send(text);
        printSent(text);
        producer.setPriority(4);
        producer.setTimeToLive(0);

        BytesMessage bytes = session.createBytesMessage();
        bytes.writeBytes(new byte[] {0, 1, 2, (byte) 0xff});
        bytes.writeInt(42);
        producer.setDeliveryMode(DeliveryMode.NON_PERSISTENT);
        producer.send(bytes);
        printSent(bytes);
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
        printSent(map);

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
        printSent(stream);

        ArrayList<String> list = new ArrayList<>();
        list.add("object");
        ObjectMessage object = session.createObjectMessage((Serializable) list);
        producer.send(object);
        printSent(object);

        Message plain = session.createMessage();
        plain.setStringProperty("only", "headers");
        producer.send(plain);
        printSent(plain);

        connection.setUseCompression(true);
        TextMessage compressed = session.createTextMessage("compressed compressed compressed compressed");
        producer.send(compressed);
        printSent(compressed);
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
            String shown;
            if (value == null) {
                shown = "null";
            } else if (value instanceof java.util.Map) {
                // Sorted, so the line does not depend on the map class's order.
                shown = "Map:" + escape(new java.util.TreeMap<Object, Object>((java.util.Map<?, ?>) value).toString());
            } else if (value instanceof java.util.List) {
                shown = "List:" + escape(value.toString());
            } else {
                shown = value.getClass().getSimpleName() + ":" + escape(value.toString());
            }
            line.append(name).append('=').append(shown).append(';');
        }
        line.append(" || ").append(detail(message));
        System.out.println(line);
    }

    /** The end of each RECEIVED line: the headers its start leaves out, and the body of every
     *  message type read back through the JMS API (so a round trip compares contents, not just
     *  classes). */
    private static String detail(Message message) throws JMSException {
        StringBuilder line = new StringBuilder("id=");
        line.append(message.getJMSMessageID());
        line.append(" jmstype=").append(escape(message.getJMSType()));
        line.append(" timestamp=").append(message.getJMSTimestamp());
        line.append(" expiration=").append(message.getJMSExpiration());
        Destination replyTo = message.getJMSReplyTo();
        line.append(" replyto=").append(replyTo == null ? "null" : escape(replyTo.toString()));
        line.append(" body=").append(body(message));
        return line.toString();
    }

    private static String body(Message message) throws JMSException {
        if (message instanceof BytesMessage) {
            BytesMessage bytes = (BytesMessage) message;
            byte[] all = new byte[(int) bytes.getBodyLength()];
            bytes.readBytes(all);
            bytes.reset();
            return "bytes:" + hex(all);
        }
        if (message instanceof MapMessage) {
            MapMessage map = (MapMessage) message;
            ArrayList<String> names = new ArrayList<>();
            for (Enumeration<?> e = map.getMapNames(); e.hasMoreElements();) {
                names.add((String) e.nextElement());
            }
            java.util.Collections.sort(names);
            StringBuilder out = new StringBuilder("map:");
            for (String name : names) {
                out.append(name).append('=').append(typed(map.getObject(name))).append(',');
            }
            return out.toString();
        }
        if (message instanceof StreamMessage) {
            StreamMessage stream = (StreamMessage) message;
            StringBuilder out = new StringBuilder("stream:");
            while (true) {
                try {
                    out.append(typed(stream.readObject())).append(',');
                } catch (javax.jms.MessageEOFException end) {
                    break;
                }
            }
            stream.reset();
            return out.toString();
        }
        if (message instanceof ObjectMessage) {
            return "object:" + typed(((ObjectMessage) message).getObject());
        }
        return "-";
    }

    /** A value as "Class:value" (byte arrays in hex). */
    private static String typed(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof byte[]) {
            return "bytes:" + hex((byte[]) value);
        }
        return value.getClass().getSimpleName() + ":" + escape(value.toString());
    }

    private static String hex(byte[] data) {
        StringBuilder out = new StringBuilder();
        for (byte b : data) {
            out.append(String.format("%02x", b & 0xff));
        }
        return out.toString();
    }

    /** After a send: "SENT id=<JMSMessageID> timestamp=<ms> expiration=<ms>", as the client set them. */
    private static void printSent(Message message) throws JMSException {
        System.out.println("SENT id=" + message.getJMSMessageID() + " timestamp=" + message.getJMSTimestamp()
                + " expiration=" + message.getJMSExpiration());
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
