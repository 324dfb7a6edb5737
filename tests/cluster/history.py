"""The fault runs' workload and its history. Every client is a thread that logs each operation with its
outcome into one History: producers (idempotent, acks=all, unique values) log `ok` with the acknowledged
partition and offset, `fail` for a write that definitely failed and `info` for one whose fate is unknown
(timed out); readers that assign every partition and read from the start log each record they poll; members
of consumer groups log their assignments, the records they poll and the offsets they commit. checker.py
judges the history."""

import json
import threading
import time

import kafka
import kafka.errors
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

# librdkafka errors after which a write may or may not be in the log.
UNKNOWN_OUTCOME = {KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TIMED_OUT_QUEUE,
                   KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._TRANSPORT,
                   KafkaError.REQUEST_TIMED_OUT, KafkaError._FATAL}


class History:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def add(self, proc, f, **fields):
        event = {"t": time.time(), "proc": proc, "f": f, **fields}
        with self.lock:
            self.events.append(event)
        return event

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def dump(self, path):
        with open(path, "w") as out:
            for event in self.snapshot():
                out.write(json.dumps(event) + "\n")

    @staticmethod
    def load(path):
        history = History()
        with open(path) as f:
            history.events = [json.loads(line) for line in f if line.strip()]
        return history


class Client(threading.Thread):
    """A workload thread: runs `step` until stopped, then `finish`. Producers (`writes`) stop first at the end
    of a run, so the readers can catch up with their last writes."""

    writes = False

    def __init__(self, name, history, bootstrap, topic):
        super().__init__(name=name, daemon=True)
        self.proc = name
        self.history = history
        self.bootstrap = bootstrap
        self.topic = topic
        self.stopping = threading.Event()

    def run(self):
        try:
            self.setup()
            while not self.stopping.is_set():
                self.step()
        except Exception as error:  # noqa: BLE001 - a client that dies is logged, and judged by the checker
            self.history.add(self.proc, "crash", err=repr(error))
        finally:
            self.finish()

    def setup(self):
        pass

    def finish(self):
        pass

    def stop(self):
        self.stopping.set()


class RdkafkaProducer(Client):
    """librdkafka (confluent-kafka): idempotent, acks=all."""

    writes = True

    def __init__(self, name, history, bootstrap, topic, rate=150):
        super().__init__(name, history, bootstrap, topic)
        self.rate = rate
        self.seq = 0

    def setup(self):
        self.producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5, "message.timeout.ms": 30000, "request.timeout.ms": 5000,
                                  "topic.metadata.refresh.interval.ms": 1000, "client.id": self.proc})

    def report(self, err, msg):
        value = msg.value().decode()
        if err is None:
            self.history.add(self.proc, "ok", value=value, p=msg.partition(), o=msg.offset())
        elif err.code() in UNKNOWN_OUTCOME or err.retriable():
            self.history.add(self.proc, "info", value=value, err=err.name())
        else:
            self.history.add(self.proc, "fail", value=value, err=err.name())

    def step(self):
        value = f"{self.proc}:{self.seq}"
        try:
            self.producer.produce(self.topic, value=value.encode(), key=str(self.seq % 31).encode(),
                                  on_delivery=self.report)
            self.history.add(self.proc, "send", value=value)
            self.seq += 1
            self.producer.poll(1.0 / self.rate)
        except BufferError:
            self.producer.poll(1.0 / self.rate)
        except KafkaException as error:
            # A fatal idempotence error (the broker lost or reordered this producer's writes): logged for the
            # checker, and a new producer (a new producer id) carries on. Its unanswered writes are unknown.
            self.history.add(self.proc, "fatal", err=str(error)[:300])
            self.producer = None
            self.setup()

    def finish(self):
        if getattr(self, "producer", None) is not None:
            try:
                left = self.producer.flush(40)
            except KafkaException as error:
                self.history.add(self.proc, "fatal", err=str(error)[:300])
                return
            if left:
                self.history.add(self.proc, "note", err=f"{left} writes undelivered at the end")


class KafkaPythonProducer(Client):
    """kafka-python, the non-librdkafka client: idempotent, acks=all."""

    writes = True

    def __init__(self, name, history, bootstrap, topic, rate=100):
        super().__init__(name, history, bootstrap, topic)
        self.rate = rate
        self.seq = 0

    def setup(self):
        self.producer = kafka.KafkaProducer(bootstrap_servers=self.bootstrap.split(","), acks="all",
                                            enable_idempotence=True, linger_ms=5, request_timeout_ms=5000,
                                            delivery_timeout_ms=30000, metadata_max_age_ms=1000,
                                            client_id=self.proc)

    def step(self):
        value = f"{self.proc}:{self.seq}"
        self.seq += 1
        future = self.producer.send(self.topic, value=value.encode(), key=str(self.seq % 29).encode())
        self.history.add(self.proc, "send", value=value)
        future.add_callback(lambda md, v=value: self.history.add(self.proc, "ok", value=v, p=md.partition,
                                                                  o=md.offset))
        future.add_errback(lambda e, v=value: self.history.add(
            self.proc, "info" if getattr(e, "retriable", True) or isinstance(e, kafka.errors.KafkaTimeoutError)
            else "fail", value=v, err=type(e).__name__))
        time.sleep(1.0 / self.rate)

    def finish(self):
        if hasattr(self, "producer"):
            self.producer.flush(40)
            self.producer.close(10)


class AssignReader(Client):
    """Assigns every partition from offset 0 and reads on; logs each record it polls, in order."""

    def __init__(self, name, history, bootstrap, topic, partitions):
        super().__init__(name, history, bootstrap, topic)
        self.partitions = partitions

    def setup(self):
        self.consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.proc}-unused",
                                  "enable.auto.commit": False, "auto.offset.reset": "error",
                                  "topic.metadata.refresh.interval.ms": 1000, "client.id": self.proc})
        self.consumer.assign([TopicPartition(self.topic, p, 0) for p in self.partitions])

    def step(self):
        for msg in self.consumer.consume(num_messages=500, timeout=0.2):
            if msg.error():
                self.history.add(self.proc, "error", err=msg.error().name(), p=msg.partition())
                continue
            self.history.add(self.proc, "poll", p=msg.partition(), o=msg.offset(), value=msg.value().decode())

    def finish(self):
        if hasattr(self, "consumer"):
            self.consumer.close()


class GroupMember(Client):
    """A member of a consumer group that commits synchronously after every batch it polls."""

    def __init__(self, name, history, bootstrap, topic, group, protocol="classic"):
        super().__init__(name, history, bootstrap, topic)
        self.group = group
        self.protocol = protocol

    def setup(self):
        config = {"bootstrap.servers": self.bootstrap, "group.id": self.group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000,
                  "client.id": self.proc, "group.protocol": self.protocol}
        if self.protocol == "classic":
            config.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        self.consumer = Consumer(config)
        self.consumer.subscribe([self.topic], on_assign=self.assigned, on_revoke=self.revoked)

    def assigned(self, consumer, partitions):
        for tp in partitions:
            self.history.add(self.proc, "assign", p=tp.partition, group=self.group)

    def revoked(self, consumer, partitions):
        for tp in partitions:
            self.history.add(self.proc, "revoke", p=tp.partition, group=self.group)

    def step(self):
        msgs = self.consumer.consume(num_messages=500, timeout=0.2)
        polled = False
        for msg in msgs:
            if msg.error():
                self.history.add(self.proc, "error", err=msg.error().name(), p=msg.partition())
                continue
            polled = True
            self.history.add(self.proc, "poll", p=msg.partition(), o=msg.offset(), value=msg.value().decode())
        if not polled:
            return
        try:
            for tp in self.consumer.commit(asynchronous=False) or []:
                if tp.error is None and tp.offset >= 0:
                    self.history.add(self.proc, "commit", p=tp.partition, o=tp.offset, group=self.group)
        except Exception as error:  # noqa: BLE001 - a failed commit is an outcome like any other
            self.history.add(self.proc, "commit-failed", err=str(error)[:200], group=self.group)

    def finish(self):
        if hasattr(self, "consumer"):
            self.consumer.close()


def committed_offsets(bootstrap, topic, group, partitions):
    """The group's committed offsets now, partition -> offset (absent when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=20)
        return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}
    finally:
        consumer.close()


def standard_workload(history, bootstrap, topic, partitions):
    """Three idempotent producers (two librdkafka, one kafka-python), two readers from the start, a classic
    group of two members and a KIP-848 group of one."""
    return [
        RdkafkaProducer("rdk-1", history, bootstrap, topic),
        RdkafkaProducer("rdk-2", history, bootstrap, topic),
        KafkaPythonProducer("kpy-1", history, bootstrap, topic),
        AssignReader("reader-1", history, bootstrap, topic, partitions),
        AssignReader("reader-2", history, bootstrap, topic, partitions),
        GroupMember("classic-1", history, bootstrap, topic, "g-classic"),
        GroupMember("classic-2", history, bootstrap, topic, "g-classic"),
        GroupMember("kip848-1", history, bootstrap, topic, "g-848", protocol="consumer"),
    ]
