package platform.spark.sink;

import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.apache.spark.unsafe.types.UTF8String;

/** Input rows as the Rust job produces them, and Spark's task/driver calls without Spark. */
final class TestRows {
  private static final AtomicLong TASK_IDS = new AtomicLong();

  private TestRows() {
  }

  /** Rows of one Kafka topic; each test has its own, as the quarantine is keyed on it. */
  record Events(String topic) {
    /** A row in SinkConfig.INPUT_SCHEMA order; registered is a UTC wall clock. */
    InternalRow row(String reason, String first, String last, String email, String phone,
        String registered, String loyalty, String raw, byte[] rawBytes, int partition,
        long offset) {
      Long micros = null;
      if (registered != null) {
        LocalDateTime t = LocalDateTime.parse(registered.replace(' ', 'T'));
        micros = t.toEpochSecond(ZoneOffset.UTC) * 1_000_000L + t.getNano() / 1_000;
      }
      return new GenericInternalRow(new Object[] {utf8(reason), utf8(first), utf8(last),
          utf8(email), utf8(phone), micros, utf8(loyalty), utf8(raw), rawBytes, utf8(topic),
          partition, offset});
    }

    InternalRow valid(String email, int partition, long offset) {
      return row(null, "Ada", "Lovelace", email, "+44 20 7946 0000",
          "2024-01-02 03:04:05.123456", "Gold", "{\"email\":\"" + email + "\"}", null,
          partition, offset);
    }

    InternalRow invalid(String reason, int partition, long offset) {
      return row(reason, null, null, null, null, null, null, "{bad " + offset + "}", null,
          partition, offset);
    }

    /** Valid events with e-mails topic.N@example.com for offsets [from, to) of partition 0. */
    List<InternalRow> range(long from, long to) {
      List<InternalRow> rows = new ArrayList<>();
      for (long o = from; o < to; o++) {
        rows.add(valid(topic + "." + o + "@example.com", 0, o));
      }
      return rows;
    }
  }

  static UTF8String utf8(String s) {
    return s == null ? null : UTF8String.fromString(s);
  }

  static SinkConfig config(PgTestDb db, String sinkId, String... extra) {
    var o = db.options(sinkId);
    for (int i = 0; i < extra.length; i += 2) {
      o.put(extra[i], extra[i + 1]);
    }
    return SinkConfig.from(new CaseInsensitiveStringMap(o), SinkConfig.INPUT_SCHEMA, "UTC");
  }

  /** The driver side, prepared as Spark does when a query starts. */
  static PgSinkWrite write(SinkConfig config) {
    PgSinkWrite w = new PgSinkWrite(config, UUID.randomUUID().toString(),
        CaseInsensitiveStringMap.empty());
    w.toStreaming();
    return w;
  }

  /** One task attempt (a fresh task id) staging rows of one Spark partition. */
  static StagedTable stage(PgSinkWrite w, long epoch, int partitionId, List<InternalRow> rows)
      throws Exception {
    try (DataWriter<InternalRow> dw = w.createStreamingWriterFactory(() -> 1)
        .createWriter(partitionId, TASK_IDS.incrementAndGet(), epoch)) {
      for (InternalRow r : rows) {
        dw.write(r);
      }
      return (StagedTable) dw.commit();
    }
  }

  /** Stages each list as one Spark partition, then commits the epoch on the driver. */
  @SafeVarargs
  static void batch(PgSinkWrite w, long epoch, List<InternalRow>... partitions)
      throws Exception {
    WriterCommitMessage[] messages = new WriterCommitMessage[partitions.length];
    for (int p = 0; p < partitions.length; p++) {
      messages[p] = stage(w, epoch, p, partitions[p]);
    }
    w.commit(epoch, messages);
  }
}
