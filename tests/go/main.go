// Command franzgo runs franz-go (kgo and kadm) against a broker for tests/clients/test_franz_go.py:
//
//	franzgo BOOTSTRAP
//
// It creates a topic, produces with the default idempotent acks=all producer, consumes directly, consumes in
// a classic group and in a KIP-848 group (each committing, then resuming from its commit), and exercises kadm:
// topic creation errors, offsets, group listing and description, committed offsets, and incremental config
// changes. It prints what it observed as one JSON object on stdout; the test asserts on it. A failed operation
// exits 1 with the error on stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topic   = "fg"
	records = 2000
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: franzgo BOOTSTRAP")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	report, err := run(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "franzgo:", err)
		os.Exit(1)
	}
	out, err := json.Marshal(report)
	if err != nil {
		fmt.Fprintln(os.Stderr, "franzgo:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

// row is one record as observed: its offset and the number in its value.
type row [2]int64

func run(ctx context.Context, bootstrap string) (map[string]any, error) {
	report := map[string]any{}
	admClient, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, err
	}
	defer admClient.Close()
	adm := kadm.NewClient(admClient)

	retention := "3600000"
	created, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": &retention}, topic)
	if err != nil {
		return nil, fmt.Errorf("create topic: %w", err)
	}
	report["created_partitions"] = created.NumPartitions
	_, err = adm.CreateTopic(ctx, 3, 1, nil, topic)
	report["create_again_error"] = errName(err)

	produced, err := produce(ctx, bootstrap, 0, records)
	if err != nil {
		return nil, err
	}
	report["produced"] = produced
	direct, err := consumeDirect(ctx, bootstrap, records)
	if err != nil {
		return nil, err
	}
	report["direct"] = direct

	for _, g := range []struct {
		name       string
		serverSide bool
	}{{"fg-classic", false}, {"fg-848", true}} {
		first, err := consumeGroup(ctx, adm, bootstrap, g.name, g.serverSide, records)
		if err != nil {
			return nil, err
		}
		report[g.name+"/first"] = first
	}
	more, err := produce(ctx, bootstrap, records, 30)
	if err != nil {
		return nil, err
	}
	report["produced_more"] = more
	for _, g := range []struct {
		name       string
		serverSide bool
	}{{"fg-classic", false}, {"fg-848", true}} {
		again, err := consumeGroup(ctx, adm, bootstrap, g.name, g.serverSide, 30)
		if err != nil {
			return nil, err
		}
		report[g.name+"/again"] = again
	}

	if err := adminChecks(ctx, adm, report); err != nil {
		return nil, err
	}
	return report, nil
}

// produce sends values first..first+count-1 with 50 keys and returns, per partition, [offset, value] by offset.
func produce(ctx context.Context, bootstrap string, first, count int) (map[string][]row, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, count)
	for i := first; i < first+count; i++ {
		recs = append(recs, &kgo.Record{Key: []byte("k" + strconv.Itoa(i%50)), Value: []byte("v-" + strconv.Itoa(i))})
	}
	results := cl.ProduceSync(ctx, recs...)
	if err := results.FirstErr(); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	// ProduceSync lists results as they completed, not as sent: order each partition by offset, which the
	// test checks against the values' order of sending.
	out := map[string][]row{}
	for _, r := range results {
		if err := record(out, r.Record); err != nil {
			return nil, err
		}
	}
	for _, rows := range out {
		sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	}
	return out, nil
}

func record(out map[string][]row, r *kgo.Record) error {
	n, err := strconv.Atoi(string(r.Value[2:]))
	if err != nil {
		return fmt.Errorf("bad value %q: %w", r.Value, err)
	}
	p := strconv.Itoa(int(r.Partition))
	out[p] = append(out[p], row{r.Offset, int64(n)})
	return nil
}

// consumeDirect reads the topic from the start without a group.
func consumeDirect(ctx context.Context, bootstrap string, expected int) (map[string][]row, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	out := map[string][]row{}
	for total := 0; total < expected; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			return nil, fmt.Errorf("direct consume after %d records: %w", total, err)
		}
		for _, r := range fetches.Records() {
			if err := record(out, r); err != nil {
				return nil, err
			}
			total++
		}
	}
	return out, nil
}

// consumeGroup joins group (KIP-848 when serverSide), reads expected records, describes the group while it is
// a member, commits, and leaves.
func consumeGroup(ctx context.Context, adm *kadm.Client, bootstrap, group string, serverSide bool,
	expected int) (map[string]any, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}
	if serverSide {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	read := map[string][]row{}
	for total := 0; total < expected; {
		fetches := cl.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			return nil, fmt.Errorf("group %s after %d records: %w", group, total, err)
		}
		for _, r := range fetches.Records() {
			if err := record(read, r); err != nil {
				return nil, err
			}
			total++
		}
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return nil, fmt.Errorf("group %s commit: %w", group, err)
	}
	// A short extra poll: a correct resume has nothing beyond the expected records.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	fetches := cl.PollFetches(short)
	cancel()
	for _, r := range fetches.Records() {
		if err := record(read, r); err != nil {
			return nil, err
		}
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	l := listed[group]
	out := map[string]any{"read": read, "listed_type": l.GroupType, "listed_protocol": l.ProtocolType}
	if serverSide {
		described, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("describe consumer groups: %w", err)
		}
		d := described[group]
		if d.Err != nil {
			return nil, fmt.Errorf("describe consumer group %s: %w", group, d.Err)
		}
		out["state"] = d.State
		out["members"] = len(d.Members)
		out["assigned"] = len(d.AssignedPartitions()[topic])
	} else {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return nil, fmt.Errorf("describe groups: %w", err)
		}
		d := described[group]
		if d.Err != nil {
			return nil, fmt.Errorf("describe group %s: %w", group, d.Err)
		}
		out["state"] = d.State
		out["members"] = len(d.Members)
		out["assigned"] = len(d.AssignedPartitions()[topic])
	}
	return out, nil
}

func adminChecks(ctx context.Context, adm *kadm.Client, report map[string]any) error {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	offsets := map[string][2]int64{}
	var failed error
	ends.Each(func(o kadm.ListedOffset) {
		s, _ := starts.Lookup(o.Topic, o.Partition)
		failed = errors.Join(failed, o.Err, s.Err)
		offsets[strconv.Itoa(int(o.Partition))] = [2]int64{s.Offset, o.Offset}
	})
	if failed != nil {
		return fmt.Errorf("list offsets: %w", failed)
	}
	report["offsets"] = offsets

	committed := map[string]map[string]int64{}
	for _, group := range []string{"fg-classic", "fg-848"} {
		fetched, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return fmt.Errorf("fetch offsets of %s: %w", group, err)
		}
		if err := fetched.Error(); err != nil {
			return fmt.Errorf("fetch offsets of %s: %w", group, err)
		}
		committed[group] = map[string]int64{}
		fetched.Each(func(o kadm.OffsetResponse) {
			committed[group][strconv.Itoa(int(o.Partition))] = o.At
		})
	}
	report["committed"] = committed

	listed, err := adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil {
		return fmt.Errorf("list groups by type: %w", err)
	}
	report["groups_of_type_consumer"] = listed.Groups()

	retention := "7200000"
	maxBytes := "300000"
	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: &retention},
		{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &maxBytes},
	}, topic)
	if err == nil {
		err = errors.Join(altered[0].Err)
	}
	if err != nil {
		return fmt.Errorf("alter topic configs: %w", err)
	}
	configs, err := topicConfigs(ctx, adm, "retention.ms", "max.message.bytes")
	if err != nil {
		return err
	}
	report["configs_set"] = configs
	altered, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
	if err == nil {
		err = errors.Join(altered[0].Err)
	}
	if err != nil {
		return fmt.Errorf("delete topic config: %w", err)
	}
	if configs, err = topicConfigs(ctx, adm, "retention.ms", "max.message.bytes"); err != nil {
		return err
	}
	report["configs_deleted"] = configs
	return nil
}

func topicConfigs(ctx context.Context, adm *kadm.Client, names ...string) (map[string][2]string, error) {
	described, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	rc, err := described.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	out := map[string][2]string{}
	for _, c := range rc.Configs {
		for _, n := range names {
			if c.Key == n {
				out[n] = [2]string{c.MaybeValue(), c.Source.String()}
			}
		}
	}
	return out, nil
}

// errName is the Kafka error name an admin call failed with, "none" when it did not fail.
func errName(err error) string {
	if err == nil {
		return "none"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return err.Error()
}
