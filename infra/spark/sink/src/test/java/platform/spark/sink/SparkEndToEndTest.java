package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.streaming.Trigger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The sink as the Rust job uses it: by short name, through a real local SparkSession. */
class SparkEndToEndTest {
  private static PgTestDb db;
  private static SparkSession spark;
  private static Path tmp;

  @BeforeAll
  static void start() throws Exception {
    db = new PgTestDb();
    tmp = Files.createTempDirectory("pg-sink-e2e");
    spark = SparkSession.builder().master("local[2]").appName("pg-exactly-once-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate();
  }

  @AfterAll
  static void stop() throws Exception {
    if (spark != null) {
      spark.stop();
    }
    if (db != null) {
      db.close();
    }
    if (tmp != null) {
      try (Stream<Path> paths = Files.walk(tmp)) {
        paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      }
    }
  }

  /** One JSON line per event, as the Rust job's parsed Kafka records would look. */
  private static String event(String reason, String email, long offset) {
    String user = reason != null ? "" : String.format(
        "\"first_name\":\"Grace\",\"last_name\":\"Hopper\",\"email\":\"%s\",\"phone\":null,"
            + "\"registration_date\":\"2024-05-06T07:08:09Z\",\"loyalty_status\":\"Silver\",",
        email);
    return String.format("{\"reason\":%s,%s\"raw\":\"payload %d\",\"topic\":\"t\","
        + "\"partition\":0,\"offset\":%d}", reason == null ? "null" : "\"" + reason + "\"",
        user, offset, offset);
  }

  private static List<String> events(String prefix, long firstOffset, int n) {
    List<String> lines = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      long offset = firstOffset + i;
      lines.add(i % 5 == 4 ? event("bad email", null, offset)
          : event(null, prefix + offset + "@example.com", offset));
    }
    return lines;
  }

  private StreamingQuery startStream(Path input, Path checkpoint) throws Exception {
    return spark.readStream().schema(SinkConfig.INPUT_SCHEMA).option("maxFilesPerTrigger", 1)
        .json(input.toString())
        .writeStream().format("pg-exactly-once")
        .options(db.options("e2e-stream"))
        .option("checkpointLocation", checkpoint.toString())
        .trigger(Trigger.AvailableNow())
        .start();
  }

  @Test
  void streamWritesEachBatchOnceEvenWhenSparkReplaysIt() throws Exception {
    Path input = Files.createDirectories(tmp.resolve("stream-in"));
    Path checkpoint = tmp.resolve("stream-checkpoint");
    Files.write(input.resolve("a.json"), events("s", 0, 100));
    Files.write(input.resolve("b.json"), events("s", 100, 100));

    StreamingQuery q = startStream(input, checkpoint);
    q.awaitTermination();
    assertEquals(160, db.count("FROM users WHERE email LIKE 's%@example.com'"));
    assertEquals(40, db.count("FROM users_quarantine WHERE kafka_topic = 't'"));
    assertEquals(2, db.count("FROM stream_sink_progress WHERE sink_id = 'e2e-stream'"));

    // Simulate a crash after the sink committed batch 1 but before Spark recorded it:
    // without its commit-log entry, Spark runs batch 1 again on restart.
    Files.delete(checkpoint.resolve("commits/1"));
    Files.deleteIfExists(checkpoint.resolve("commits/.1.crc"));
    StreamingQuery again = startStream(input, checkpoint);
    again.awaitTermination();

    StreamingQueryProgress[] progress = again.recentProgress();
    assertTrue(Arrays.stream(progress).anyMatch(p -> p.batchId() == 1 && p.numInputRows() == 100),
        "batch 1 should have been replayed");
    assertEquals(160, db.count("FROM users WHERE email LIKE 's%@example.com'"));
    assertEquals(40, db.count("FROM users_quarantine WHERE kafka_topic = 't'"));
    assertEquals(0, db.count("FROM users_quarantine WHERE reason = 'duplicate email'"));
  }

  @Test
  void batchWriteWithBatchIdIsIdempotent() throws Exception {
    List<Row> rows = new ArrayList<>();
    for (long i = 0; i < 50; i++) {
      rows.add(RowFactory.create(i % 10 == 0 ? "missing email" : null, "Alan", "Turing",
          i % 10 == 0 ? null : "b" + i + "@example.com", null,
          java.sql.Timestamp.valueOf("2024-01-01 00:00:00"), "Bronze", "raw " + i, "b", 1, i));
    }
    Dataset<Row> df = spark.createDataFrame(rows, SinkConfig.INPUT_SCHEMA).repartition(2);
    for (int run = 0; run < 2; run++) {
      df.write().format("pg-exactly-once").mode("append").options(db.options("e2e-batch"))
          .option("batchId", "7").save();
    }
    assertEquals(45, db.count("FROM users WHERE email LIKE 'b%@example.com'"));
    assertEquals(5, db.count("FROM users_quarantine WHERE kafka_topic = 'b'"));
    assertEquals(2, db.count("FROM stream_sink_progress WHERE sink_id = 'e2e-batch'"
        + " AND batch_id = 7"));
  }
}
