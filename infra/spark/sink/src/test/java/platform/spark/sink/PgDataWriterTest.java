package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The DataWriter's transaction against the real PostgreSQL, without Spark. */
class PgDataWriterTest {
  private static final String TOPIC = "new_user_events";
  private static PgTestDb db;
  private static long nextOffset;

  @BeforeAll
  static void createSchema() throws Exception {
    db = new PgTestDb();
  }

  @AfterAll
  static void dropSchema() throws Exception {
    if (db != null) {
      db.close();
    }
  }

  private static SinkConfig config(String sinkId, Map<String, String> extra) {
    Map<String, String> o = db.options(sinkId);
    o.putAll(extra);
    return SinkConfig.from(new CaseInsensitiveStringMap(o), SinkConfig.INPUT_SCHEMA, "UTC");
  }

  private static SinkConfig config(String sinkId) {
    return config(sinkId, Map.of());
  }

  static InternalRow valid(String email) {
    return row(null, "Ada", "Lovelace", email, "+44 20 7946 0000", "2024-01-02T03:04:05.123456Z",
        "Gold");
  }

  static InternalRow invalid(String reason) {
    return row(reason, null, null, null, null, null, null);
  }

  static InternalRow row(String reason, String first, String last, String email, String phone,
      String registered, String loyalty) {
    long offset = nextOffset++;
    Long micros = null;
    if (registered != null) {
      Instant t = Instant.parse(registered);
      micros = t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000;
    }
    String raw = "{\"email\":\"" + email + "\",\"offset\":" + offset + "}";
    return new GenericInternalRow(new Object[] {utf8(reason), utf8(first), utf8(last),
        utf8(email), utf8(phone), micros, utf8(loyalty), utf8(raw), utf8(TOPIC), 0, offset});
  }

  private static UTF8String utf8(String s) {
    return s == null ? null : UTF8String.fromString(s);
  }

  private static SinkCommitMessage write(SinkConfig cfg, long batch, int partition,
      List<InternalRow> rows) throws Exception {
    try (PgDataWriter w = new PgDataWriter(cfg, batch, partition)) {
      for (InternalRow r : rows) {
        w.write(r);
      }
      return w.commit();
    }
  }

  @Test
  void validAndInvalidRowsLandInTheirTables() throws Exception {
    SinkConfig cfg = config("split");
    SinkCommitMessage m = write(cfg, 0, 0, List.of(valid("split1@example.com"),
        invalid("split: bad json"), valid("split2@example.com"), invalid("split: bad loyalty"),
        valid("split3@example.com")));

    assertEquals(new SinkCommitMessage(0, false, 3, 2, 0, 0), m);
    assertEquals(3, db.count("FROM users WHERE email LIKE 'split%'"));
    assertEquals(1, db.count("FROM users_quarantine WHERE reason = 'split: bad json'"));
    assertEquals(1, db.count("FROM users_quarantine WHERE reason = 'split: bad loyalty'"
        + " AND kafka_topic = 'new_user_events' AND raw_payload LIKE '{%'"));
    assertEquals("3/2", db.string("SELECT rows_written || '/' || rows_quarantined"
        + " FROM stream_sink_progress WHERE sink_id = 'split' AND batch_id = 0"));
    // Spark's instant is stored as its wall clock in the session zone (UTC here).
    assertEquals("2024-01-02 03:04:05.123456", db.string(
        "SELECT registration_date::text FROM users WHERE email = 'split1@example.com'"));
  }

  @Test
  void sameBatchAndPartitionTwiceWritesNothingTheSecondTime() throws Exception {
    SinkConfig cfg = config("replay");
    List<InternalRow> rows = List.of(valid("replay1@example.com"), invalid("bad email"));
    assertEquals(new SinkCommitMessage(3, false, 1, 1, 0, 0), write(cfg, 5, 3, rows));

    SinkCommitMessage again = write(cfg, 5, 3, rows);

    assertEquals(new SinkCommitMessage(3, true, 0, 0, 0, 2), again);
    assertEquals(1, db.count("FROM users WHERE email = 'replay1@example.com'"));
    assertEquals(0, db.count("FROM users_quarantine WHERE reason = 'duplicate email'"
        + " AND raw_payload LIKE '%replay1@%'"));
    assertEquals(1, db.count("FROM stream_sink_progress WHERE sink_id = 'replay'"));
    // Another partition of the same batch, and another sink id, are not replays.
    assertFalse(write(cfg, 5, 4, List.of(valid("replay2@example.com"))).replayed());
    assertFalse(write(config("replay-other"), 5, 3, List.of(valid("replay3@example.com")))
        .replayed());
  }

  @Test
  void abortedWriterLeavesNothingAndTheRetryWrites() throws Exception {
    SinkConfig cfg = config("abort", Map.of("batchSize", "2"));
    List<InternalRow> rows = List.of(valid("abort1@example.com"), valid("abort2@example.com"),
        invalid("bad json"), valid("abort3@example.com"));
    try (PgDataWriter w = new PgDataWriter(cfg, 1, 0)) {
      for (InternalRow r : rows) {
        w.write(r); // batchSize 2: chunks are already flushed inside the transaction
      }
      w.abort();
    }
    assertEquals(0, db.count("FROM users WHERE email LIKE 'abort%'"));
    assertEquals(0, db.count("FROM stream_sink_progress WHERE sink_id = 'abort'"));

    // A writer that fails without abort (Spark then only calls close) rolls back too.
    try (PgDataWriter w = new PgDataWriter(cfg, 1, 0)) {
      w.write(rows.get(0));
    }
    assertEquals(0, db.count("FROM users WHERE email LIKE 'abort%'"));

    assertEquals(new SinkCommitMessage(0, false, 3, 1, 0, 0), write(cfg, 1, 0, rows));
    assertEquals(3, db.count("FROM users WHERE email LIKE 'abort%'"));
  }

  @Test
  void duplicateEmailsAreQuarantined() throws Exception {
    db.execute("INSERT INTO users (first_name, last_name, email, registration_date,"
        + " loyalty_status) VALUES ('Old', 'User', 'dup-old@example.com', now(), 'Bronze')");
    SinkConfig cfg = config("dup", Map.of("batchSize", "3"));
    // Repeats across chunk boundaries too (chunks of 3).
    SinkCommitMessage m = write(cfg, 0, 0, List.of(valid("dup-old@example.com"),
        valid("dup-new@example.com"), valid("dup-x@example.com"), valid("dup-new@example.com"),
        valid("dup-y@example.com"), valid("dup-x@example.com")));

    assertEquals(new SinkCommitMessage(0, false, 3, 3, 3, 0), m);
    assertEquals(1, db.count("FROM users WHERE email = 'dup-old@example.com'"));
    assertEquals(1, db.count("FROM users WHERE email = 'dup-new@example.com'"));
    assertEquals(3, db.count("FROM users_quarantine WHERE reason = 'duplicate email'"
        + " AND raw_payload LIKE '%dup-%'"));
    assertEquals("Old", db.string(
        "SELECT first_name FROM users WHERE email = 'dup-old@example.com'"));
  }

  @Test
  void rowsBreakingTheUsersConstraintsAreQuarantinedNotFatal() throws Exception {
    SinkCommitMessage m = write(config("constraints"), 0, 0, List.of(
        row(null, "A", "B", "c1@example.com", null, "2024-01-01T00:00:00Z", "Platinum"),
        row(null, "x".repeat(51), "B", "c2@example.com", null, "2024-01-01T00:00:00Z", "Gold"),
        row(null, "A", "B", "c3@example.com", null, null, "Gold"),
        row(null, "A\0", "B", "c4@example.com", null, "2024-01-01T00:00:00Z", "Gold"),
        row(null, "Ünïcødé".repeat(7), "B", "c5@example.com", null, "2024-01-01T00:00:00Z",
            "Silver")));
    assertEquals(new SinkCommitMessage(0, false, 1, 4, 0, 0), m);
    assertEquals(1, db.count("FROM users_quarantine WHERE reason = 'unknown loyalty_status'"
        + " AND raw_payload LIKE '%c1@%'"));
    assertEquals(1, db.count(
        "FROM users_quarantine WHERE reason = 'first_name longer than 50 characters'"));
    assertEquals(1, db.count("FROM users_quarantine WHERE reason = 'missing registration_date'"));
    assertEquals(1, db.count(
        "FROM users_quarantine WHERE reason = 'first_name contains a NUL character'"));
  }

  @Test
  void wrongInputSchemaFailsUpFront() {
    StructType bad = new StructType().add("email", DataTypes.StringType)
        .add("offset", DataTypes.StringType);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SinkConfig.from(new CaseInsensitiveStringMap(db.options("x")), bad, "UTC"));
    assertTrue(e.getMessage().contains("missing column reason"), e.getMessage());
    assertTrue(e.getMessage().contains("column offset is string, expected bigint"));
    assertFalse(config("x").toString().contains(db.password));
  }

  @Test
  void throughputOfOneWriter() throws Exception {
    int n = 60_000;
    List<InternalRow> rows = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      rows.add(i % 10 == 0 ? invalid("bad email") : valid("perf" + i + "@example.com"));
    }
    long start = System.nanoTime();
    SinkCommitMessage m = write(config("perf"), 0, 0, rows);
    double secs = (System.nanoTime() - start) / 1e9;
    System.out.printf("pg-exactly-once: one writer, %d rows in %.2f s = %.0f rows/s%n", n, secs,
        n / secs);
    assertEquals(54_000, m.written());
    assertEquals(6_000, m.quarantined());
  }
}
