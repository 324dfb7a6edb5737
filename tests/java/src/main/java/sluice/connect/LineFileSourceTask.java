package sluice.connect;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/** The task of {@link LineFileSource}: sends each complete line (without its newline) as a string value. */
public final class LineFileSourceTask extends SourceTask {
    private static final int MAX_BATCH = 500;
    private String file;
    private String topic;
    private RandomAccessFile in;
    private long position;

    @Override
    public void start(Map<String, String> props) {
        file = props.get("file");
        topic = props.get("topic");
        Map<String, Object> offset = context.offsetStorageReader().offset(partition());
        position = offset == null ? 0 : ((Number) offset.get("position")).longValue();
    }

    private Map<String, String> partition() {
        return Map.of("file", file);
    }

    @Override
    public List<SourceRecord> poll() throws InterruptedException {
        List<SourceRecord> records = new ArrayList<>();
        try {
            if (in == null) {
                in = new RandomAccessFile(file, "r");
            }
            in.seek(position);
            byte[] rest = new byte[(int) Math.min(Math.max(in.length() - position, 0), 1 << 20)];
            in.readFully(rest);
            int start = 0;
            for (int i = 0; i < rest.length && records.size() < MAX_BATCH; i++) {
                if (rest[i] == '\n') {
                    String line = new String(rest, start, i - start, StandardCharsets.UTF_8);
                    position += i + 1 - start;
                    start = i + 1;
                    records.add(new SourceRecord(partition(), Map.of("position", position), topic, null,
                            Schema.STRING_SCHEMA, line));
                }
            }
        } catch (IOException e) {
            throw new ConnectException("reading " + file, e);
        }
        if (records.isEmpty()) {
            Thread.sleep(100); // nothing new: Connect calls poll again at once
        }
        return records;
    }

    @Override
    public void stop() {
        try {
            if (in != null) {
                in.close();
            }
        } catch (IOException e) {
            throw new ConnectException(e);
        }
    }

    @Override
    public String version() {
        return "1";
    }
}
