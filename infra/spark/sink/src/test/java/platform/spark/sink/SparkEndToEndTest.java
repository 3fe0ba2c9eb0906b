package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.streaming.StreamingQuery;
import org.apache.spark.sql.streaming.StreamingQueryProgress;
import org.apache.spark.sql.streaming.Trigger;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The plugin as the Rust jobs use it, through a real local SparkSession: the sink by its
 * short name, and Spark's JDBC source/sink with the platform-env connection provider.
 */
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

  /** The JSON lines' schema: the sink's input, with raw_bytes as base64 text. */
  private static final StructType JSON_SCHEMA = new StructType(Arrays.stream(
      SinkConfig.INPUT_SCHEMA.fields()).filter(f -> !f.name().equals("raw_bytes"))
      .toArray(org.apache.spark.sql.types.StructField[]::new))
      .add("raw_b64", DataTypes.StringType);

  /** One JSON line per event, as the Rust job's parsed Kafka records would look. */
  private static String event(String reason, String email, long offset) {
    String user = reason != null ? "" : String.format(
        "\"first_name\":\"Grace\",\"last_name\":\"Hopper\",\"email\":\"%s\",\"phone\":null,"
            + "\"registration_date\":\"2024-05-06T07:08:09.123Z\",\"loyalty_status\":\"Silver\",",
        email);
    // Every 10th bad event's payload is not UTF-8: the job passes its bytes instead.
    String raw = reason != null && offset % 10 == 9
        ? "\"raw\":null,\"raw_b64\":\"" + Base64.getEncoder().encodeToString(
            new byte[] {(byte) 0xFF, (byte) offset}) + "\","
        : "\"raw\":\"payload " + offset + "\",";
    return String.format("{\"reason\":%s,%s%s\"topic\":\"t\",\"partition\":0,\"offset\":%d}",
        reason == null ? "null" : "\"" + reason + "\"", user, raw, offset);
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
    return spark.readStream().schema(JSON_SCHEMA).option("maxFilesPerTrigger", 1)
        .json(input.toString())
        .selectExpr("*", "unbase64(raw_b64) AS raw_bytes")
        .writeStream().format("pg-exactly-once")
        .options(db.options("e2e-stream"))
        .option("checkpointLocation", checkpoint.toString())
        .trigger(Trigger.AvailableNow())
        .start();
  }

  @Test
  void streamWritesEachEventOnceWhateverSparkReplays() throws Exception {
    Path input = Files.createDirectories(tmp.resolve("stream-in"));
    Path checkpoint = tmp.resolve("stream-checkpoint");
    Files.write(input.resolve("a.json"), events("S", 0, 100));
    Files.write(input.resolve("b.json"), events("S", 100, 100));

    startStream(input, checkpoint).awaitTermination();
    assertEquals(160, db.count("FROM users WHERE email LIKE 's%@example.com'"));
    assertEquals(40, db.count("FROM users_quarantine WHERE kafka_topic = 't'"));
    assertEquals(20, db.count("FROM users_quarantine WHERE kafka_topic = 't'"
        + " AND raw_payload IS NULL AND raw_bytes IS NOT NULL"));
    assertEquals("\\xff63", db.string("SELECT raw_bytes::text FROM users_quarantine"
        + " WHERE kafka_topic = 't' AND kafka_offset = 99"));
    assertEquals(List.of("0:80/20", "1:80/20"), db.strings("SELECT epoch || ':' || rows_written"
        + " || '/' || rows_quarantined FROM stream_sink_commits WHERE sink_id = 'e2e-stream'"
        + " ORDER BY commit_id"));
    assertEquals("2024-05-06 07:08:09.123", db.string("SELECT registration_date::text"
        + " FROM users WHERE email = 's0@example.com'"));

    // A crash after the sink committed batch 1 but before Spark recorded it: without
    // its commit-log entry, Spark runs batch 1 again on restart.
    Files.delete(checkpoint.resolve("commits/1"));
    Files.deleteIfExists(checkpoint.resolve("commits/.1.crc"));
    StreamingQuery again = startStream(input, checkpoint);
    again.awaitTermination();
    StreamingQueryProgress[] progress = again.recentProgress();
    assertTrue(Arrays.stream(progress).anyMatch(p -> p.batchId() == 1 && p.numInputRows() == 100),
        "batch 1 should have been replayed");

    // A lost checkpoint: everything is read again, from epoch 0.
    startStream(input, tmp.resolve("stream-checkpoint-new")).awaitTermination();

    assertEquals(160, db.count("FROM users WHERE email LIKE 's%@example.com'"));
    assertEquals(40, db.count("FROM users_quarantine WHERE kafka_topic = 't'"));
    assertEquals(0, db.count("FROM users_quarantine WHERE reason LIKE 'duplicate%'"));
    assertEquals(List.of("1:0/100", "0:0/100", "1:0/100"), db.strings("SELECT epoch || ':'"
        + " || rows_written || '/' || rows_skipped FROM stream_sink_commits"
        + " WHERE sink_id = 'e2e-stream' ORDER BY commit_id OFFSET 2"));
    assertEquals(0, db.count("FROM pg_tables WHERE schemaname = '" + db.schema
        + "' AND tablename LIKE 'stream\\_stage\\_%'"));
  }

  private Dataset<Row> batchRows(String topic, int n) {
    List<Row> rows = new ArrayList<>();
    for (long i = 0; i < n; i++) {
      rows.add(RowFactory.create(i % 10 == 0 ? "missing email" : null, "Alan", "Turing",
          i % 10 == 0 ? null : topic + i + "@example.com", null,
          java.sql.Timestamp.valueOf("2024-01-01 00:00:00"), "Bronze", "raw " + i, null,
          topic, 1, i));
    }
    return spark.createDataFrame(rows, SinkConfig.INPUT_SCHEMA).repartition(2);
  }

  @Test
  void batchWriteOfTheSameEventsTwiceWritesThemOnce() throws Exception {
    Dataset<Row> df = batchRows("b", 50);
    for (int run = 0; run < 2; run++) {
      df.write().format("pg-exactly-once").mode("append").options(db.options("e2e-batch"))
          .option("batchId", "7").save();
    }
    assertEquals(45, db.count("FROM users WHERE email LIKE 'b%@example.com'"));
    assertEquals(5, db.count("FROM users_quarantine WHERE kafka_topic = 'b'"));
    assertEquals(List.of("7:45/0", "7:0/50"), db.strings("SELECT epoch || ':' || rows_written"
        + " || '/' || rows_skipped FROM stream_sink_commits WHERE sink_id = 'e2e-batch'"
        + " ORDER BY commit_id"));
  }

  @Test
  void aPasswordInThePlanIsRefused() {
    Exception e = assertThrows(Exception.class, () -> batchRows("p", 1).write()
        .format("pg-exactly-once").mode("append").options(db.options("e2e-password"))
        .option("password", db.password).save());
    String message = String.valueOf(e.getMessage());
    assertTrue(message.contains("option 'password' is refused"), message);
    assertFalse(message.contains(db.password), message);
  }

  @Test
  void sparksJdbcSourceAndSinkGetThePasswordFromTheEnvironment() throws Exception {
    db.execute("INSERT INTO users (first_name, last_name, email, registration_date,"
        + " loyalty_status) VALUES ('J', 'D', 'jdbc@example.com', now(), 'Gold')");
    Dataset<Row> users = spark.read().format("jdbc").option("url", db.url())
        .option("dbtable", "users").option("user", db.user)
        .option("connectionProvider", "platform-env")
        .option("passwordEnv", PgTestDb.PASSWORD_ENV).load();
    assertEquals(1, users.filter("email = 'jdbc@example.com'").count());

    users.filter("email = 'jdbc@example.com'").select("user_id", "email").write()
        .format("jdbc").mode(SaveMode.Append).option("url", db.url())
        .option("dbtable", "jdbc_copy").option("user", db.user)
        .option("connectionProvider", "platform-env")
        .option("passwordEnv", PgTestDb.PASSWORD_ENV).save();
    assertEquals(1, db.count("FROM jdbc_copy WHERE email = 'jdbc@example.com'"));

    Exception e = assertThrows(Exception.class, () -> spark.read().format("jdbc")
        .option("url", db.url()).option("dbtable", "users").option("user", db.user)
        .option("connectionProvider", "platform-env")
        .option("passwordEnv", "PG_SINK_TEST_UNSET_PASSWORD").load());
    assertTrue(rootMessage(e).contains("environment variable PG_SINK_TEST_UNSET_PASSWORD"),
        rootMessage(e));
  }

  private static String rootMessage(Throwable t) {
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return String.valueOf(t.getMessage());
  }
}
