import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.Destination;
import javax.jms.Message;
import javax.jms.MessageConsumer;
import javax.jms.MessageProducer;
import javax.jms.Session;

import org.apache.activemq.ActiveMQConnectionFactory;
import org.apache.activemq.ActiveMQSession;

/**
 * The OpenWire side of gateway-bench: the ActiveMQ 5.17 JMS client (Debian's libactivemq-java)
 * with the same knobs, payload and report as the Rust bench binary.
 *
 * <pre>
 * java -cp CLASSPATH JmsBench [--url tcp://127.0.0.1:61616] [--producers 1] [--consumers 1]
 *      [--size 1024] [--count 100000 | --duration SECS] [--rate MSGS_PER_SEC] [--persistent]
 *      [--async-send] [--ack auto|client|individual] [--ack-every N] [--prefetch 1000] [--fanout]
 *      [--destination NAME] [--label TEXT] [--drain-timeout SECS] [--user U --password P]
 *      [--warmup SECS]
 * </pre>
 *
 * Payload: 24 little-endian header bytes ("GWB1", producer u32, sequence u64, send time u64 in
 * ns of this JVM's clock) padded with 'x' to --size, in a BytesMessage. Persistent sends are
 * synchronous (ActiveMQ's default) unless --async-send; non-persistent sends are asynchronous
 * (also the default). Prints one human line on stderr and one JSON line on stdout; exits 1 when
 * a message was lost, duplicated or unexpected.
 *
 * <p>--warmup SECS: each producer first publishes at the same pace (or as fast as it can without
 * --rate) for SECS seconds before the measured --count or --duration begins. Those messages are
 * checked for exactly-once arrival like the others but their latencies are not recorded: the
 * first second of a fresh JVM runs interpreted code and JIT compilations (C1/C2 threads busy on
 * the same cores), which put 5-14 ms on its first messages (measured against the gateway; the
 * cause is in this client). Rates and counts cover the whole run.
 */
public final class JmsBench {
    private static final long BASE = System.nanoTime();

    static long nowNs() {
        return System.nanoTime() - BASE;
    }

    // ---- knobs ----
    static String url = "tcp://127.0.0.1:61616";
    static String user = null;
    static String password = null;
    static int producers = 1;
    static int consumers = 1;
    static int size = 1024;
    static long count = 100_000;
    static double duration = 0;
    static double rate = 0;
    static boolean persistent = false;
    static boolean asyncSend = false;
    static String ack = "auto";
    static int ackEvery = 0;
    static int prefetch = 1000;
    static boolean fanout = false;
    static String destination = "bench-" + ProcessHandle.current().pid() + "-" + System.currentTimeMillis();
    static String label = "";
    static double drainTimeout = 10;
    static double warmup = 0;
    /**
     * Per producer, the first sequence number of the measured part (Long.MAX_VALUE while it is
     * still warming up): lower ones are warm-up messages whose latencies are not recorded.
     */
    static java.util.concurrent.atomic.AtomicLongArray measuredFromSeq;

    /** Receive counts of one consumer. */
    static final class Tracker {
        byte[][] counts = new byte[0][];
        long foreign;
        long deliveries;
        int[] latUs = new int[1024];
        int nLat;

        void record(int producer, long seq, long sentNs, long now) {
            deliveries++;
            if (nLat == latUs.length) {
                latUs = Arrays.copyOf(latUs, latUs.length * 2);
            }
            if (producer < 0 || producer >= measuredFromSeq.length() || seq >= measuredFromSeq.get(producer)) {
                latUs[nLat++] = (int) Math.min(Integer.MAX_VALUE, Math.max(0, (now - sentNs) / 1000));
            }
            if (producer < 0 || producer > 1_000_000 || seq < 0 || seq > (1L << 30)) {
                foreign++;
                return;
            }
            if (counts.length <= producer) {
                counts = Arrays.copyOf(counts, producer + 1);
            }
            byte[] c = counts[producer];
            if (c == null) {
                c = new byte[1024];
            }
            if (c.length <= seq) {
                c = Arrays.copyOf(c, (int) Math.max(seq + 1, (long) c.length * 2));
            }
            counts[producer] = c;
            if (c[(int) seq] != (byte) 255) {
                c[(int) seq]++;
            }
        }

        void merge(Tracker o) {
            foreign += o.foreign;
            deliveries += o.deliveries;
            for (int i = 0; i < o.nLat; i++) {
                if (nLat == latUs.length) {
                    latUs = Arrays.copyOf(latUs, latUs.length * 2);
                }
                latUs[nLat++] = o.latUs[i];
            }
            if (counts.length < o.counts.length) {
                counts = Arrays.copyOf(counts, o.counts.length);
            }
            for (int p = 0; p < o.counts.length; p++) {
                byte[] theirs = o.counts[p];
                if (theirs == null) {
                    continue;
                }
                byte[] mine = counts[p] == null ? new byte[theirs.length] : counts[p];
                if (mine.length < theirs.length) {
                    mine = Arrays.copyOf(mine, theirs.length);
                }
                for (int s = 0; s < theirs.length; s++) {
                    mine[s] = (byte) Math.min(255, (mine[s] & 0xff) + (theirs[s] & 0xff));
                }
                counts[p] = mine;
            }
        }

        /** {lost, duplicates, unexpected} against published[p] messages per producer. */
        long[] verdict(long[] published) {
            long lost = 0, dups = 0, unexpected = 0;
            for (int p = 0; p < Math.max(published.length, counts.length); p++) {
                long sent = p < published.length ? published[p] : 0;
                byte[] c = p < counts.length && counts[p] != null ? counts[p] : new byte[0];
                for (int s = 0; s < c.length; s++) {
                    int n = c[s] & 0xff;
                    if (s < sent) {
                        if (n == 0) {
                            lost++;
                        } else {
                            dups += n - 1;
                        }
                    } else {
                        unexpected += n;
                    }
                }
                lost += Math.max(0, sent - c.length);
            }
            return new long[] {lost, dups, unexpected};
        }
    }

    static final AtomicLong received = new AtomicLong();
    static final AtomicLong lastDeliveryNs = new AtomicLong();
    static final AtomicBoolean stop = new AtomicBoolean();
    static volatile Throwable firstError;

    static void fail(String who, Throwable t) {
        synchronized (JmsBench.class) {
            if (firstError == null) {
                firstError = new RuntimeException(who + ": " + t, t);
            }
        }
    }

    static ActiveMQConnectionFactory factory() {
        ActiveMQConnectionFactory f = user == null ? new ActiveMQConnectionFactory(url)
                : new ActiveMQConnectionFactory(user, password, url);
        f.getPrefetchPolicy().setQueuePrefetch(prefetch);
        f.getPrefetchPolicy().setTopicPrefetch(prefetch);
        if (persistent) {
            f.setUseAsyncSend(asyncSend);
        }
        return f;
    }

    static Destination dest(Session s) throws Exception {
        return fanout ? s.createTopic(destination) : s.createQueue(destination);
    }

    static long countFor(int id) {
        return count / producers + (id < count % producers ? 1 : 0);
    }

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--url": url = args[++i]; break;
                case "--user": user = args[++i]; break;
                case "--password": password = args[++i]; break;
                case "--producers": producers = Integer.parseInt(args[++i]); break;
                case "--consumers": consumers = Integer.parseInt(args[++i]); break;
                case "--size": size = Integer.parseInt(args[++i]); break;
                case "--count": count = Long.parseLong(args[++i]); break;
                case "--duration": duration = Double.parseDouble(args[++i]); break;
                case "--rate": rate = Double.parseDouble(args[++i]); break;
                case "--persistent": persistent = true; break;
                case "--async-send": asyncSend = true; break;
                case "--ack": ack = args[++i]; break;
                case "--ack-every": ackEvery = Integer.parseInt(args[++i]); break;
                case "--prefetch": prefetch = Integer.parseInt(args[++i]); break;
                case "--fanout": fanout = true; break;
                case "--destination": destination = args[++i]; break;
                case "--label": label = args[++i]; break;
                case "--drain-timeout": drainTimeout = Double.parseDouble(args[++i]); break;
                case "--warmup": warmup = Double.parseDouble(args[++i]); break;
                default:
                    System.err.println("unknown argument " + a);
                    System.exit(2);
            }
        }
        if (size < 24 || producers < 1) {
            System.err.println("--size must be at least 24 and --producers at least 1");
            System.exit(2);
        }
        final int ackMode;
        switch (ack) {
            case "auto": ackMode = Session.AUTO_ACKNOWLEDGE; break;
            case "client": ackMode = Session.CLIENT_ACKNOWLEDGE; break;
            case "individual": ackMode = ActiveMQSession.INDIVIDUAL_ACKNOWLEDGE; break;
            default: throw new IllegalArgumentException("--ack " + ack);
        }
        final int every = ackEvery > 0 ? ackEvery : Math.max(1, prefetch / 2);

        measuredFromSeq = new java.util.concurrent.atomic.AtomicLongArray(producers);
        for (int p = 0; p < producers; p++) {
            measuredFromSeq.set(p, Long.MAX_VALUE);
        }
        // Consumers first, each on its own connection and thread.
        Tracker[] trackers = new Tracker[consumers];
        Thread[] consumerThreads = new Thread[consumers];
        CountDownLatch ready = new CountDownLatch(consumers);
        // Consumers meet after their last acknowledgement and before they close, so that no
        // consumer's unacknowledged messages are redelivered to another one still open.
        CountDownLatch acked = new CountDownLatch(consumers);
        for (int c = 0; c < consumers; c++) {
            final int id = c;
            trackers[c] = new Tracker();
            consumerThreads[c] = new Thread(() -> {
                Tracker t = trackers[id];
                try {
                    Connection conn = factory().createConnection();
                    conn.start();
                    Session s = conn.createSession(false, ackMode);
                    MessageConsumer mc = s.createConsumer(dest(s));
                    ready.countDown();
                    byte[] buf = new byte[Math.max(size, 24)];
                    int unacked = 0;
                    Message last = null;
                    while (!stop.get()) {
                        Message m = mc.receive(50);
                        if (m == null) {
                            continue;
                        }
                        long now = nowNs();
                        if (m instanceof BytesMessage) {
                            BytesMessage bm = (BytesMessage) m;
                            int n = bm.readBytes(buf);
                            ByteBuffer bb = ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN);
                            if (n >= 24 && bb.getInt(0) == 0x31425747) {
                                t.record(bb.getInt(4), bb.getLong(8), bb.getLong(16), now);
                            } else {
                                t.deliveries++;
                                t.foreign++;
                            }
                        } else {
                            t.deliveries++;
                            t.foreign++;
                        }
                        received.incrementAndGet();
                        lastDeliveryNs.accumulateAndGet(now, Math::max);
                        if (ackMode == ActiveMQSession.INDIVIDUAL_ACKNOWLEDGE) {
                            m.acknowledge();
                        } else if (ackMode == Session.CLIENT_ACKNOWLEDGE && ++unacked >= every) {
                            m.acknowledge();
                            unacked = 0;
                        }
                        last = m;
                    }
                    if (ackMode == Session.CLIENT_ACKNOWLEDGE && unacked > 0 && last != null) {
                        last.acknowledge();
                    }
                    acked.countDown();
                    acked.await(10, java.util.concurrent.TimeUnit.SECONDS);
                    conn.close();
                } catch (Throwable e) {
                    fail("consumer " + id, e);
                    ready.countDown();
                    acked.countDown();
                }
            }, "consumer-" + c);
            consumerThreads[c].start();
        }
        ready.await();

        long startNs = nowNs();
        long warmupNs = (long) (Math.max(0, warmup) * 1e9);
        long[] published = new long[producers];
        Thread[] producerThreads = new Thread[producers];
        for (int p = 0; p < producers; p++) {
            final int id = p;
            producerThreads[p] = new Thread(() -> {
                try {
                    Connection conn = factory().createConnection();
                    conn.start();
                    Session s = conn.createSession(false, Session.AUTO_ACKNOWLEDGE);
                    MessageProducer mp = s.createProducer(dest(s));
                    mp.setDeliveryMode(persistent ? DeliveryMode.PERSISTENT : DeliveryMode.NON_PERSISTENT);
                    long limit = duration > 0 ? Long.MAX_VALUE : countFor(id);
                    long warmupEnd = System.nanoTime() + warmupNs;
                    long deadline = duration > 0 ? warmupEnd + (long) (duration * 1e9) : Long.MAX_VALUE;
                    long measuredFrom = -1;
                    long period = rate > 0 ? (long) (1e9 / (rate / producers)) : 0;
                    long t0 = System.nanoTime();
                    ByteBuffer bb = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
                    for (int i = 24; i < size; i++) {
                        bb.put(i, (byte) 'x');
                    }
                    for (long seq = 0; System.nanoTime() < deadline; seq++) {
                        if (measuredFrom < 0 && System.nanoTime() >= warmupEnd) {
                            measuredFrom = seq;
                            measuredFromSeq.set(id, seq);
                        }
                        if (measuredFrom >= 0 && seq - measuredFrom >= limit) {
                            break;
                        }
                        if (period > 0) {
                            long slot = t0 + seq * period;
                            long wait;
                            while ((wait = slot - System.nanoTime()) > 0) {
                                LockSupport.parkNanos(wait);
                            }
                        }
                        bb.putInt(0, 0x31425747).putInt(4, id).putLong(8, seq).putLong(16, nowNs());
                        BytesMessage m = s.createBytesMessage();
                        m.writeBytes(bb.array());
                        mp.send(m);
                        published[id]++;
                    }
                    // close() is a synchronous round trip: every earlier send was read by then.
                    conn.close();
                } catch (Throwable e) {
                    fail("producer " + id, e);
                }
            }, "producer-" + p);
            producerThreads[p].start();
        }
        for (Thread t : producerThreads) {
            t.join();
        }
        double publishSecs = (nowNs() - startNs) / 1e9;
        long totalPublished = Arrays.stream(published).sum();
        long expected = totalPublished * (fanout ? consumers : 1);

        long lastCount = received.get();
        long lastProgress = System.nanoTime();
        while (consumers > 0 && firstError == null) {
            long got = received.get();
            if (got >= expected) {
                Thread.sleep(200);
                break;
            }
            if (got != lastCount) {
                lastCount = got;
                lastProgress = System.nanoTime();
            } else if (System.nanoTime() - lastProgress > (long) (drainTimeout * 1e9)) {
                break;
            }
            Thread.sleep(5);
        }
        stop.set(true);
        for (Thread t : consumerThreads) {
            t.join(30_000);
        }

        long lost = 0, dups = 0, unexpected = 0, deliveries = 0;
        Tracker union = new Tracker();
        List<int[]> lats = new ArrayList<>();
        for (Tracker t : trackers) {
            deliveries += t.deliveries;
            unexpected += t.foreign;
            if (fanout) {
                long[] v = t.verdict(published);
                lost += v[0];
                dups += v[1];
                unexpected += v[2];
                lats.add(Arrays.copyOf(t.latUs, t.nLat));
            } else {
                union.merge(t);
            }
        }
        if (!fanout && consumers > 0) {
            long[] v = union.verdict(published);
            lost += v[0];
            dups += v[1];
            unexpected += v[2];
            lats.add(Arrays.copyOf(union.latUs, union.nLat));
        }
        int[] all = lats.stream().flatMapToInt(Arrays::stream).sorted().toArray();
        double consumeSecs = Math.max(0, lastDeliveryNs.get() - startNs) / 1e9;
        boolean ok = firstError == null && (consumers == 0 || (lost == 0 && dups == 0 && unexpected == 0));
        String p50 = pct(all, 0.5), p99 = pct(all, 0.99), p999 = pct(all, 0.999);
        double pubRate = publishSecs > 0 ? totalPublished / publishSecs : 0;
        double conRate = consumeSecs > 0 ? deliveries / consumeSecs : 0;
        System.err.printf(Locale.ROOT,
                "openwire %s: published %d in %.2f s (%.0f/s), %d deliveries of %d (%.0f/s), lost %d, duplicates %d, "
                        + "unexpected %d, latency ms p50 %s p99 %s p99.9 %s, client GC %d in %d ms -> %s%n",
                label, totalPublished, publishSecs, pubRate, deliveries, expected, conRate, lost, dups, unexpected,
                p50, p99, p999, gcCollections(), gcMillis(), ok ? "OK" : "FAILED");
        if (firstError != null) {
            System.err.println("error: " + firstError);
        }
        System.out.printf(Locale.ROOT,
                "{\"bench\":\"gateway-bench\",\"label\":%s,\"protocol\":\"openwire\",\"url\":%s,\"destination\":%s,"
                        + "\"producers\":%d,\"consumers\":%d,\"size\":%d,\"persistent\":%b,\"async_send\":%b,"
                        + "\"ack\":%s,\"prefetch\":%d,\"fanout\":%b,\"rate_target\":%s,\"published\":%d,"
                        + "\"expected_deliveries\":%d,\"deliveries\":%d,\"lost\":%d,\"duplicates\":%d,\"unexpected\":%d,"
                        + "\"publish_secs\":%.6f,\"consume_secs\":%.6f,\"published_per_sec\":%.1f,\"consumed_per_sec\":%.1f,"
                        + "\"latency_ms\":{\"p50\":%s,\"p99\":%s,\"p999\":%s},\"jvm_gc\":{\"collections\":%d,\"ms\":%d},"
                        + "\"ok\":%b,\"error\":%s}%n",
                q(label), q(url), q(destination), producers, consumers, size, persistent, asyncSend, q(ack), prefetch,
                fanout, rate > 0 ? String.valueOf(rate) : "null", totalPublished, expected, deliveries, lost, dups,
                unexpected, publishSecs, consumeSecs, pubRate, conRate, json(p50), json(p99), json(p999),
                gcCollections(), gcMillis(), ok,
                firstError == null ? "null" : q(firstError.toString()));
        System.exit(ok ? 0 : 1);
    }

    /** Collections of this JVM so far: each young pause stops the producer and consumer threads. */
    static long gcCollections() {
        return java.lang.management.ManagementFactory.getGarbageCollectorMXBeans().stream()
                .mapToLong(b -> Math.max(0, b.getCollectionCount())).sum();
    }

    /** Milliseconds this JVM spent collecting so far. */
    static long gcMillis() {
        return java.lang.management.ManagementFactory.getGarbageCollectorMXBeans().stream()
                .mapToLong(b -> Math.max(0, b.getCollectionTime())).sum();
    }

    static String pct(int[] sorted, double q) {
        if (sorted.length == 0) {
            return "-";
        }
        int rank = (int) Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
        return String.format(Locale.ROOT, "%.3f", sorted[rank - 1] / 1000.0);
    }

    static String json(String pct) {
        return "-".equals(pct) ? "null" : pct;
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
