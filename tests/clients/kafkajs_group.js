// kafkajs consumer group: joins GROUP on TOPIC, consumes COUNT messages, commits, and leaves. Prints a JSON
// summary. Usage: node kafkajs_group.js BOOTSTRAP TOPIC GROUP COUNT
const { Kafka, logLevel } = require("kafkajs");

async function main() {
  const [bootstrap, topic, groupId, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({ clientId: "sluice-js-group", brokers: [bootstrap], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });
  await consumer.run({
    autoCommit: true,
    eachMessage: async ({ partition, message }) => {
      seen.push({ partition, offset: Number(message.offset), value: message.value.toString() });
      if (seen.length >= count) resolveDone();
    },
  });
  const timer = setTimeout(() => resolveDone(), 30000);
  await done;
  clearTimeout(timer);
  await consumer.commitOffsets([]).catch(() => {});
  await consumer.disconnect();
  console.log(JSON.stringify({ count: seen.length, values: seen.map((s) => s.value) }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
