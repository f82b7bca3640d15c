// KafkaProbe: drives the gateway's Kafka listener with the official Java client
// (org.apache.kafka:kafka-clients), public API only. Run by tests/kafka/test_java_client.py.
//
//   java -cp "$KAFKA_CLIENTS_CLASSPATH:<dir of KafkaProbe.class>" KafkaProbe <host:port> <topic-prefix>
//
// Each step prints "OK <step> <details>" or "FAIL <step> <exception>"; the exit status is the
// number of failed steps (0 = all passed). Steps after a failed one still run where they can.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class KafkaProbe {
    static final int PARTITIONS = 3;
    static final int PER_CODEC = 20;
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final Duration POLL = Duration.ofMillis(200);
    static final long STEP_DEADLINE_MS = 30_000;

    final String bootstrap;
    final String topic;
    final String prefix;
    int failures = 0;
    /** Timestamp taken between the first and second half of the produced codecs. */
    long middleTimestamp = -1;
    /** Records produced, keyed by value. */
    final Map<String, ProducedRecord> produced = new HashMap<>();

    record ProducedRecord(String key, String value, String header, int partition, long offset, long timestamp) {}

    interface Step {
        String run() throws Exception;
    }

    KafkaProbe(String bootstrap, String prefix) {
        this.bootstrap = bootstrap;
        this.prefix = prefix;
        this.topic = prefix + "-probe";
    }

    void step(String name, Step step) {
        try {
            String details = step.run();
            System.out.println("OK " + name + " " + details);
        } catch (Throwable e) {
            failures++;
            System.out.println("FAIL " + name + " " + e);
            e.printStackTrace(System.out);
        }
        System.out.flush();
    }

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new IllegalStateException(message);
        }
    }

    Properties common() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        return p;
    }

    KafkaConsumer<String, String> consumer(String group) {
        Properties p = common();
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "20000");
        return new KafkaConsumer<>(p);
    }

    void admin() throws Exception {
        try (Admin admin = Admin.create(common())) {
            step("admin.createTopics", () -> {
                admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1)))
                        .all().get(20, TimeUnit.SECONDS);
                return topic + " partitions=" + PARTITIONS;
            });
            step("admin.listTopics", () -> {
                Set<String> names = admin.listTopics().names().get(20, TimeUnit.SECONDS);
                check(names.contains(topic), "topic missing from " + names);
                return "contains " + topic;
            });
            step("admin.describeTopics", () -> {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(20, TimeUnit.SECONDS).get(topic);
                check(d.partitions().size() == PARTITIONS, "partitions: " + d.partitions());
                check(d.partitions().get(0).leader() != null, "no leader: " + d);
                return "partitions=" + d.partitions().size() + " leader=" + d.partitions().get(0).leader().idString();
            });
            step("admin.describeConfigs", () -> {
                ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                Config config = admin.describeConfigs(List.of(res)).all().get(20, TimeUnit.SECONDS).get(res);
                ConfigEntry retention = config.get("retention.ms");
                check(retention != null, "no retention.ms in " + config.entries());
                return "retention.ms=" + retention.value() + " entries=" + config.entries().size();
            });
        }
    }

    void produce() throws Exception {
        int half = CODECS.length / 2;
        for (int c = 0; c < CODECS.length; c++) {
            String codec = CODECS[c];
            if (c == half) {
                Thread.sleep(20);
                middleTimestamp = System.currentTimeMillis();
                Thread.sleep(20);
            }
            step("produce." + codec, () -> {
                Properties p = common();
                p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                p.put(ProducerConfig.ACKS_CONFIG, "all");
                p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
                p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
                p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
                p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "20000");
                List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
                List<ProducerRecord<String, String>> sent = new ArrayList<>();
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                    for (int i = 0; i < PER_CODEC; i++) {
                        String key = "key-" + i;
                        String value = codec + "-value-" + i + "-" + "x".repeat(i * 10);
                        ProducerRecord<String, String> r = new ProducerRecord<>(topic, key, value);
                        r.headers().add("probe-header", (codec + "-" + i).getBytes(StandardCharsets.UTF_8));
                        sent.add(r);
                        futures.add(producer.send(r));
                    }
                    producer.flush();
                    for (int i = 0; i < futures.size(); i++) {
                        RecordMetadata m = futures.get(i).get(20, TimeUnit.SECONDS);
                        ProducerRecord<String, String> r = sent.get(i);
                        produced.put(r.value(), new ProducedRecord(r.key(), r.value(), codec + "-" + i,
                                m.partition(), m.offset(), m.timestamp()));
                    }
                }
                return PER_CODEC + " records acked";
            });
        }
    }

    String checkRecord(ConsumerRecord<String, String> r) {
        ProducedRecord p = produced.get(r.value());
        if (p == null) {
            return "unexpected value " + r.value();
        }
        if (!p.key().equals(r.key())) {
            return "key " + r.key() + " != " + p.key();
        }
        Header h = r.headers().lastHeader("probe-header");
        if (h == null || !p.header().equals(new String(h.value(), StandardCharsets.UTF_8))) {
            return "header of " + r.value() + " is " + h;
        }
        if (p.partition() != r.partition() || p.offset() != r.offset()) {
            return "position of " + r.value() + " " + r.partition() + "/" + r.offset()
                    + " != " + p.partition() + "/" + p.offset();
        }
        return null;
    }

    /** Polls until `expected` distinct values arrived or the deadline passes; checks each record. */
    Map<String, ConsumerRecord<String, String>> drain(KafkaConsumer<String, String> consumer, int expected) {
        Map<String, ConsumerRecord<String, String>> got = new HashMap<>();
        long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
        while (got.size() < expected && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : consumer.poll(POLL)) {
                String problem = checkRecord(r);
                check(problem == null, problem);
                check(got.put(r.value(), r) == null, "duplicate " + r.value());
            }
        }
        return got;
    }

    List<TopicPartition> partitions() {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < PARTITIONS; i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    void consumeGroup() {
        String group = prefix + "-group";
        step("group.subscribe-poll-commitSync", () -> {
            try (KafkaConsumer<String, String> c = consumer(group)) {
                c.subscribe(List.of(topic));
                Map<String, ConsumerRecord<String, String>> got = drain(c, produced.size());
                check(got.size() == produced.size(), "received " + got.size() + " of " + produced.size());
                c.commitSync(Duration.ofSeconds(20));
                Map<TopicPartition, OffsetAndMetadata> committed =
                        c.committed(new HashSet<>(partitions()), Duration.ofSeconds(20));
                long total = 0;
                for (TopicPartition tp : partitions()) {
                    OffsetAndMetadata om = committed.get(tp);
                    check(om != null, "no committed offset for " + tp);
                    check(om.offset() == c.position(tp), "committed " + om + " != position " + c.position(tp));
                    total += om.offset();
                }
                check(total == produced.size(), "committed offsets sum " + total);
                return got.size() + " records, committed " + committed.values();
            }
        });
        step("group.resume-after-commit", () -> {
            // Commit with metadata, then a new member of the same group starts at the committed
            // offsets: nothing is redelivered.
            try (KafkaConsumer<String, String> c = consumer(group)) {
                c.subscribe(List.of(topic));
                Map<String, ConsumerRecord<String, String>> got = new HashMap<>();
                long deadline = System.currentTimeMillis() + 5_000;
                while (System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                        got.put(r.value(), r);
                    }
                }
                check(!c.assignment().isEmpty(), "no assignment after 5 s");
                check(got.isEmpty(), "redelivered " + got.size() + " records after commit");
                Map<TopicPartition, OffsetAndMetadata> meta = new HashMap<>();
                for (TopicPartition tp : c.assignment()) {
                    meta.put(tp, new OffsetAndMetadata(c.position(tp), "probe-meta-" + tp.partition()));
                }
                c.commitSync(meta, Duration.ofSeconds(20));
                Map<TopicPartition, OffsetAndMetadata> back = c.committed(meta.keySet(), Duration.ofSeconds(20));
                for (TopicPartition tp : meta.keySet()) {
                    check(("probe-meta-" + tp.partition()).equals(back.get(tp).metadata()),
                            "metadata for " + tp + " came back as " + back.get(tp));
                }
                return "no redelivery, commit metadata round-trips";
            }
        });
    }

    void replay() {
        step("replay.seekToBeginning", () -> {
            try (KafkaConsumer<String, String> c = consumer(null)) {
                c.assign(partitions());
                c.seekToBeginning(partitions());
                Map<String, ConsumerRecord<String, String>> got = drain(c, produced.size());
                check(got.size() == produced.size(), "received " + got.size() + " of " + produced.size());
                return got.size() + " records";
            }
        });
        step("replay.offsetsForTimes", () -> {
            long expected = produced.values().stream().filter(p -> p.timestamp() >= middleTimestamp).count();
            check(expected > 0 && expected < produced.size(), "bad middle timestamp, expected " + expected);
            try (KafkaConsumer<String, String> c = consumer(null)) {
                c.assign(partitions());
                Map<TopicPartition, Long> query = new HashMap<>();
                for (TopicPartition tp : partitions()) {
                    query.put(tp, middleTimestamp);
                }
                Map<TopicPartition, OffsetAndTimestamp> found = c.offsetsForTimes(query, Duration.ofSeconds(20));
                for (TopicPartition tp : partitions()) {
                    OffsetAndTimestamp ot = found.get(tp);
                    check(ot != null, "no offset for time in " + tp);
                    check(ot.timestamp() >= middleTimestamp, "found timestamp before query: " + ot);
                    c.seek(tp, ot.offset());
                }
                Map<String, ConsumerRecord<String, String>> got = drain(c, (int) expected);
                for (ConsumerRecord<String, String> r : got.values()) {
                    check(r.timestamp() >= middleTimestamp, "record before timestamp: " + r);
                }
                check(got.size() == expected, "received " + got.size() + " of " + expected);
                return got.size() + " records at or after the middle timestamp";
            }
        });
        step("replay.seek-mid-batch", () -> {
            // A fetch from an offset inside a compressed batch returns only records from there on.
            ProducedRecord target = produced.values().stream()
                    .filter(p -> p.value().startsWith("zstd-") && p.offset() > 0)
                    .min((a, b) -> Long.compare(b.offset(), a.offset()))
                    .orElseThrow();
            TopicPartition tp = new TopicPartition(topic, target.partition());
            try (KafkaConsumer<String, String> c = consumer(null)) {
                c.assign(List.of(tp));
                c.seek(tp, target.offset());
                ConsumerRecords<String, String> records = ConsumerRecords.empty();
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (records.isEmpty() && System.currentTimeMillis() < deadline) {
                    records = c.poll(POLL);
                }
                check(!records.isEmpty(), "nothing fetched from " + tp + "@" + target.offset());
                ConsumerRecord<String, String> first = records.iterator().next();
                check(first.offset() == target.offset(), "first offset " + first.offset() + " != " + target.offset());
                check(first.value().equals(target.value()), "first value " + first.value());
                return tp + "@" + target.offset();
            }
        });
        step("admin.listOffsets", () -> {
            try (Admin admin = Admin.create(common())) {
                Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
                Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
                Map<TopicPartition, OffsetSpec> byTime = new HashMap<>();
                for (TopicPartition tp : partitions()) {
                    earliest.put(tp, OffsetSpec.earliest());
                    latest.put(tp, OffsetSpec.latest());
                    byTime.put(tp, OffsetSpec.forTimestamp(middleTimestamp));
                }
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e =
                        admin.listOffsets(earliest).all().get(20, TimeUnit.SECONDS);
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> l =
                        admin.listOffsets(latest).all().get(20, TimeUnit.SECONDS);
                Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> t =
                        admin.listOffsets(byTime).all().get(20, TimeUnit.SECONDS);
                long total = 0;
                for (TopicPartition tp : partitions()) {
                    check(e.get(tp).offset() == 0, "earliest of " + tp + " = " + e.get(tp));
                    check(t.get(tp).offset() >= 0 && t.get(tp).offset() <= l.get(tp).offset(),
                            "by time of " + tp + " = " + t.get(tp));
                    total += l.get(tp).offset();
                }
                check(total == produced.size(), "latest offsets sum " + total + " != " + produced.size());
                return "earliest/latest/forTimestamp, latest sum " + total;
            }
        });
    }


    void adminGroups() {
        String group = prefix + "-group";
        step("admin.listGroups", () -> {
            try (Admin admin = Admin.create(common())) {
                Collection<GroupListing> groups = admin.listGroups().all().get(20, TimeUnit.SECONDS);
                check(groups.stream().anyMatch(g -> g.groupId().equals(group)), "group missing from " + groups);
                return groups.size() + " groups";
            }
        });
        step("admin.describeConsumerGroups", () -> {
            try (Admin admin = Admin.create(common())) {
                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all()
                        .get(20, TimeUnit.SECONDS).get(group);
                check(d != null && d.groupId().equals(group), "description " + d);
                return "state=" + d.groupState() + " members=" + d.members().size();
            }
        });
        step("admin.listConsumerGroupOffsets", () -> {
            try (Admin admin = Admin.create(common())) {
                Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
                long total = 0;
                for (TopicPartition tp : partitions()) {
                    check(offsets.get(tp) != null, "no offset for " + tp + " in " + offsets);
                    total += offsets.get(tp).offset();
                }
                check(total == produced.size(), "committed sum " + total);
                return offsets.size() + " partitions, sum " + total;
            }
        });
        step("consumer.beginningOffsets-endOffsets", () -> {
            try (KafkaConsumer<String, String> c = consumer(null)) {
                Map<TopicPartition, Long> begin = c.beginningOffsets(partitions(), Duration.ofSeconds(20));
                Map<TopicPartition, Long> end = c.endOffsets(partitions(), Duration.ofSeconds(20));
                long total = 0;
                for (TopicPartition tp : partitions()) {
                    check(begin.get(tp) == 0, "begin " + begin);
                    total += end.get(tp);
                }
                check(total == produced.size(), "end sum " + total);
                check(c.partitionsFor(topic).size() == PARTITIONS, "partitionsFor " + c.partitionsFor(topic));
                return "begin=" + begin.values() + " end=" + end.values();
            }
        });
    }

    void produceVariants() {
        String other = prefix + "-variants";
        step("produce.acks0-acks1-nullkey-autocreate", () -> {
            List<String> expected = new ArrayList<>();
            for (String acks : new String[] {"0", "1"}) {
                Properties p = common();
                p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
                p.put(ProducerConfig.ACKS_CONFIG, acks);
                p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
                p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
                try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                    producer.send(new ProducerRecord<>(other, 0, null, "acks" + acks + "-nullkey")).get(20, TimeUnit.SECONDS);
                    producer.flush();
                }
                expected.add("null:acks" + acks + "-nullkey");
            }
            try (KafkaConsumer<String, String> c = consumer(null)) {
                TopicPartition tp = new TopicPartition(other, 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                List<String> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (got.size() < expected.size() && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                        got.add(r.key() + ":" + r.value());
                    }
                }
                check(got.equals(expected), "got " + got + " expected " + expected);
                return got.toString();
            }
        });
        step("produce.tombstone", () -> {
            // A null value (tombstone) comes back null, an empty value empty.
            Properties p = common();
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                producer.send(new ProducerRecord<>(other, 0, "deleted", null)).get(20, TimeUnit.SECONDS);
                producer.send(new ProducerRecord<>(other, 0, "blank", "")).get(20, TimeUnit.SECONDS);
            }
            // After the two records of the previous step.
            List<String> expected = List.of("null:acks0-nullkey", "null:acks1-nullkey", "deleted:null", "blank:");
            try (KafkaConsumer<String, String> c = consumer(null)) {
                TopicPartition tp = new TopicPartition(other, 0);
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                List<String> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (got.size() < expected.size() && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                        got.add(r.key() + ":" + r.value());
                    }
                }
                check(got.equals(expected), "got " + got + " expected " + expected);
                return got.toString();
            }
        });
        step("admin.deleteTopics", () -> {
            try (Admin admin = Admin.create(common())) {
                admin.deleteTopics(List.of(other)).all().get(20, TimeUnit.SECONDS);
                long deadline = System.currentTimeMillis() + 10_000;
                Set<String> names = admin.listTopics().names().get(20, TimeUnit.SECONDS);
                while (names.contains(other) && System.currentTimeMillis() < deadline) {
                    Thread.sleep(200);
                    names = admin.listTopics().names().get(20, TimeUnit.SECONDS);
                }
                check(!names.contains(other), "still listed: " + names);
                return other + " deleted";
            }
        });
    }


    KafkaConsumer<String, String> consumer(String group, Map<String, String> overrides) {
        Properties p = common();
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, "20000");
        p.putAll(overrides);
        return new KafkaConsumer<>(p);
    }

    /** Two members of `group` with `overrides` poll until they split the partitions and drained the topic. */
    String splitBetweenTwo(String group, Map<String, String> overridesA, Map<String, String> overridesB) {
        try (KafkaConsumer<String, String> a = consumer(group, overridesA);
                KafkaConsumer<String, String> b = consumer(group, overridesB)) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            Map<String, ConsumerRecord<String, String>> got = new HashMap<>();
            long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : a.poll(POLL)) {
                    got.put(r.value(), r);
                }
                for (ConsumerRecord<String, String> r : b.poll(POLL)) {
                    got.put(r.value(), r);
                }
                Set<TopicPartition> as = a.assignment();
                Set<TopicPartition> bs = b.assignment();
                if (!as.isEmpty() && !bs.isEmpty() && as.size() + bs.size() == PARTITIONS
                        && Collections.disjoint(as, bs) && got.size() == produced.size()) {
                    break;
                }
            }
            Set<TopicPartition> as = a.assignment();
            Set<TopicPartition> bs = b.assignment();
            check(!as.isEmpty() && !bs.isEmpty(), "assignments " + as + " / " + bs);
            check(Collections.disjoint(as, bs) && as.size() + bs.size() == PARTITIONS,
                    "assignments overlap or miss partitions: " + as + " / " + bs);
            check(got.size() == produced.size(), "received " + got.size() + " of " + produced.size());
            a.commitSync(Duration.ofSeconds(20));
            b.commitSync(Duration.ofSeconds(20));
            return "a=" + partitionsOf(as) + " b=" + partitionsOf(bs);
        }
    }

    void groupVariants() {
        step("group.cooperative-sticky", () -> {
            Map<String, String> coop = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
            return splitBetweenTwo(prefix + "-coop", coop, coop);
        });
        step("group.static-membership", () -> {
            return splitBetweenTwo(prefix + "-static",
                    Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "probe-a"),
                    Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "probe-b"));
        });
        step("group.member-leaves-survivor-takes-all", () -> {
            String group = prefix + "-leave";
            try (KafkaConsumer<String, String> a = consumer(group, Map.of())) {
                a.subscribe(List.of(topic));
                try (KafkaConsumer<String, String> b = consumer(group, Map.of())) {
                    b.subscribe(List.of(topic));
                    long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                    while (System.currentTimeMillis() < deadline
                            && (a.assignment().isEmpty() || b.assignment().isEmpty()
                                || a.assignment().size() + b.assignment().size() != PARTITIONS)) {
                        a.poll(POLL);
                        b.poll(POLL);
                    }
                    check(!a.assignment().isEmpty() && !b.assignment().isEmpty(),
                            "never split: " + a.assignment() + " / " + b.assignment());
                }
                // b closed (LeaveGroup): a is reassigned every partition.
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (System.currentTimeMillis() < deadline && a.assignment().size() != PARTITIONS) {
                    a.poll(POLL);
                }
                check(a.assignment().size() == PARTITIONS, "survivor holds " + a.assignment());
                return "survivor holds " + partitionsOf(a.assignment());
            }
        });
        step("consume.read_committed-autocommit", () -> {
            String group = prefix + "-auto";
            Map<String, String> o = Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                    ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "true",
                    ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, "200",
                    ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "7");
            try (KafkaConsumer<String, String> c = consumer(group, o)) {
                c.subscribe(List.of(topic));
                Map<String, ConsumerRecord<String, String>> got = drain(c, produced.size());
                check(got.size() == produced.size(), "received " + got.size() + " of " + produced.size());
            }
            // close() commits the consumed positions (auto-commit).
            try (Admin admin = Admin.create(common())) {
                Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get(20, TimeUnit.SECONDS);
                long total = offsets.values().stream().mapToLong(OffsetAndMetadata::offset).sum();
                check(total == produced.size(), "auto-committed sum " + total + " in " + offsets);
                return "auto-committed " + total;
            }
        });
        step("produce.pipelined-ordering", () -> {
            // Many small batches in flight on one connection (max.in.flight 5, idempotent):
            // every send is acked, and each partition holds its sends in send order.
            String piped = prefix + "-piped";
            int count = 3000;
            Properties p = common();
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.BATCH_SIZE_CONFIG, "512");
            p.put(ProducerConfig.LINGER_MS_CONFIG, "0");
            p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
            p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
            Map<Integer, List<Long>> offsetsBySeq = new HashMap<>();
            List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < count; i++) {
                    futures.add(producer.send(new ProducerRecord<>(piped, "key-" + (i % 7), String.valueOf(i))));
                }
                producer.flush();
                for (int i = 0; i < count; i++) {
                    RecordMetadata m = futures.get(i).get(20, TimeUnit.SECONDS);
                    offsetsBySeq.computeIfAbsent(m.partition(), k -> new ArrayList<>()).add(m.offset());
                }
            }
            long total = 0;
            for (Map.Entry<Integer, List<Long>> e : offsetsBySeq.entrySet()) {
                List<Long> offsets = e.getValue();
                for (int i = 0; i < offsets.size(); i++) {
                    check(offsets.get(i) == i, "partition " + e.getKey() + ": send " + i + " got offset " + offsets.get(i));
                }
                total += offsets.size();
            }
            check(total == count, "acked " + total);
            return count + " records in " + futures.size() + " sends, offsets contiguous in send order per partition";
        });
        step("produce-consume.large-records", () -> {
            String big = prefix + "-big";
            Properties p = common();
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
            p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
            List<String> values = new ArrayList<>();
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 4; i++) {
                    StringBuilder v = new StringBuilder("big-" + i + "-");
                    java.util.Random rnd = new java.util.Random(i);
                    while (v.length() < 700_000) {
                        v.append(Long.toString(rnd.nextLong(), 36));
                    }
                    values.add(v.toString());
                    producer.send(new ProducerRecord<>(big, 0, "k" + i, v.toString())).get(20, TimeUnit.SECONDS);
                }
            }
            // A fetch limit below one record's size still returns that record (KIP-74).
            try (KafkaConsumer<String, String> c = consumer(prefix + "-bigreader",
                    Map.of(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "65536",
                            ConsumerConfig.FETCH_MAX_BYTES_CONFIG, "100000"))) {
                c.subscribe(List.of(big));
                List<String> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (got.size() < values.size() && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                        got.add(r.value());
                    }
                }
                check(got.equals(values), "got " + got.size() + " of " + values.size() + " large records intact");
                return values.size() + " records of ~700 KB";
            }
        });
    }

    void rebalance() {
        String group = prefix + "-pair";
        step("group.rebalance-two-members", () -> {
            try (KafkaConsumer<String, String> a = consumer(group); KafkaConsumer<String, String> b = consumer(group)) {
                a.subscribe(List.of(topic));
                b.subscribe(List.of(topic));
                Map<String, ConsumerRecord<String, String>> gotA = new HashMap<>();
                Map<String, ConsumerRecord<String, String>> gotB = new HashMap<>();
                long deadline = System.currentTimeMillis() + STEP_DEADLINE_MS;
                while (System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : a.poll(POLL)) {
                        gotA.put(r.value(), r);
                    }
                    for (ConsumerRecord<String, String> r : b.poll(POLL)) {
                        gotB.put(r.value(), r);
                    }
                    Set<TopicPartition> as = a.assignment();
                    Set<TopicPartition> bs = b.assignment();
                    if (!as.isEmpty() && !bs.isEmpty() && as.size() + bs.size() == PARTITIONS
                            && Collections.disjoint(as, bs)) {
                        Set<String> all = new HashSet<>(gotA.keySet());
                        all.addAll(gotB.keySet());
                        if (all.size() == produced.size()) {
                            break;
                        }
                    }
                }
                Set<TopicPartition> as = a.assignment();
                Set<TopicPartition> bs = b.assignment();
                check(!as.isEmpty() && !bs.isEmpty(), "assignments " + as + " / " + bs);
                check(Collections.disjoint(as, bs) && as.size() + bs.size() == PARTITIONS,
                        "assignments overlap or miss partitions: " + as + " / " + bs);
                Set<String> all = new HashSet<>(gotA.keySet());
                all.addAll(gotB.keySet());
                check(all.size() == produced.size(), "received " + all.size() + " of " + produced.size());
                a.commitSync(Duration.ofSeconds(20));
                b.commitSync(Duration.ofSeconds(20));
                return "a=" + partitionsOf(as) + " b=" + partitionsOf(bs) + " records a=" + gotA.size() + " b=" + gotB.size();
            }
        });
    }

    static String partitionsOf(Collection<TopicPartition> tps) {
        List<Integer> ps = new ArrayList<>();
        for (TopicPartition tp : tps) {
            ps.add(tp.partition());
        }
        Collections.sort(ps);
        return ps.toString();
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: KafkaProbe <host:port> <topic-prefix>");
            System.exit(2);
        }
        KafkaProbe probe = new KafkaProbe(args[0], args[1]);
        System.out.println("client kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion());
        probe.admin();
        probe.produce();
        probe.consumeGroup();
        probe.replay();
        probe.adminGroups();
        probe.produceVariants();
        probe.rebalance();
        probe.groupVariants();
        System.out.println("failures " + probe.failures);
        System.exit(Math.min(probe.failures, 100));
    }
}
