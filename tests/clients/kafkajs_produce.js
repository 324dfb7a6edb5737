// kafkajs (non-flexible protocol versions only): admin createTopics, produce keyed records with headers and
// timestamps (plain and gzip), and read offsets back with ListOffsets. Prints a JSON summary.
// Usage: node kafkajs_produce.js BOOTSTRAP TOPIC COUNT
const { Kafka, CompressionTypes, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({ clientId: "sluice-test", brokers: [bootstrap], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const base = 1700000000000;
  const half = Math.floor(count / 2);
  for (const [start, end, compression] of [[0, half, CompressionTypes.None], [half, count, CompressionTypes.GZIP]]) {
    const messages = [];
    for (let i = start; i < end; i++) {
      messages.push({ key: `key-${i % 31}`, value: `value-${i}`, headers: { seq: `${i}` }, timestamp: `${base + i}` });
    }
    await producer.send({ topic, messages, acks: -1, compression });
  }
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets(topic);
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, base + Math.floor(count / 2));
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  await admin.disconnect();
  console.log(JSON.stringify({ created, again, offsets, byTime, partitions: metadata.topics[0].partitions.length }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
