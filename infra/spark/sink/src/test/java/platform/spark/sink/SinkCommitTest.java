package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static platform.spark.sink.TestRows.batch;
import static platform.spark.sink.TestRows.config;
import static platform.spark.sink.TestRows.stage;
import static platform.spark.sink.TestRows.write;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import platform.spark.sink.TestRows.Events;

/** Staging (executors) and the batch commit (driver) against the real PostgreSQL. */
class SinkCommitTest {
  private static PgTestDb db;

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

  /** written/quarantined/duplicates/skipped of the sink's latest commit. */
  private static String lastCommit(String sinkId) throws Exception {
    return db.string("SELECT concat_ws('/', rows_written, rows_quarantined, rows_duplicate,"
        + " rows_skipped) FROM stream_sink_commits WHERE sink_id = '" + sinkId
        + "' ORDER BY commit_id DESC LIMIT 1");
  }

  private static long stagingTables(String sinkId) throws Exception {
    return db.count("FROM pg_tables WHERE schemaname = '" + db.schema
        + "' AND starts_with(tablename, '" + SinkTables.stagePrefix(sinkId) + "')");
  }

  @Test
  void validAndInvalidRowsLandInTheirTablesAsTheyCame() throws Exception {
    Events ev = new Events("split");
    PgSinkWrite w = write(config(db, "split"));
    byte[] notUtf8 = {'{', (byte) 0xC3, (byte) 0x28, 0, (byte) 0xFF, '}'};
    batch(w, 0, List.of(
        ev.valid("split1@example.com", 0, 0),
        ev.row("malformed JSON", null, null, null, null, null, null, "{bad \\ \t \n \r 1}",
            null, 0, 1),
        ev.row(null, "Zoë 𝄞 🙂", "O'Brien \\ \t \n \r end", "split2@example.com", null,
            "2025-12-31 23:59:59.123", "Silver", "{}", null, 0, 2),
        ev.row("malformed JSON", null, null, null, null, null, null, null, notUtf8, 0, 3),
        // A payload the job passed as text although TEXT cannot hold it (NUL).
        ev.row("malformed JSON", null, null, null, null, null, null, "a\0b", null, 0, 4)),
        List.of(ev.valid("split3@example.com", 1, 0)));

    assertEquals("3/3/0/0", lastCommit("split"));
    assertEquals(3, db.count("FROM users WHERE email LIKE 'split%'"));
    assertEquals("Zoë 𝄞 🙂|O'Brien \\ \t \n \r end|2025-12-31 23:59:59.123|Silver|",
        db.string("SELECT concat_ws('|', first_name, last_name, registration_date::text,"
            + " loyalty_status, coalesce(phone, '')) FROM users"
            + " WHERE email = 'split2@example.com'"));
    assertEquals("2024-01-02 03:04:05.123456", db.string(
        "SELECT registration_date::text FROM users WHERE email = 'split1@example.com'"));
    assertEquals("{bad \\ \t \n \r 1}", db.string("SELECT raw_payload FROM users_quarantine"
        + " WHERE kafka_topic = 'split' AND kafka_partition = 0 AND kafka_offset = 1"
        + " AND reason = 'malformed JSON' AND raw_bytes IS NULL"));
    try (Connection c = db.connect(); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT raw_bytes, raw_payload FROM users_quarantine"
            + " WHERE kafka_topic = 'split' AND kafka_offset IN (3, 4) AND kafka_partition = 0"
            + " ORDER BY kafka_offset")) {
      rs.next();
      assertArrayEquals(notUtf8, rs.getBytes(1));
      assertNull(rs.getString(2));
      rs.next();
      assertArrayEquals(new byte[] {'a', 0, 'b'}, rs.getBytes(1));
      assertNull(rs.getString(2));
    }
    assertEquals(List.of("0:5", "1:1"), db.strings("SELECT kafka_partition || ':' || next_offset"
        + " FROM stream_sink_offsets WHERE sink_id = 'split' ORDER BY kafka_partition"));
    assertEquals(0, stagingTables("split"));
  }

  @Test
  void replayedEpochWritesNothing() throws Exception {
    Events ev = new Events("replay");
    PgSinkWrite w = write(config(db, "replay"));
    List<InternalRow> rows = new ArrayList<>(ev.range(0, 5));
    rows.add(ev.invalid("malformed JSON", 0, 5));
    batch(w, 7, rows);
    assertEquals("5/1/0/0", lastCommit("replay"));

    // Spark crashed after the commit, before recording it: the same epoch again.
    batch(w, 7, rows);

    assertEquals("0/0/0/6", lastCommit("replay"));
    assertEquals(5, db.count("FROM users WHERE email LIKE 'replay.%'"));
    assertEquals(1, db.count("FROM users_quarantine WHERE kafka_topic = 'replay'"));
    assertEquals(2, db.count("FROM stream_sink_commits WHERE sink_id = 'replay'"));
  }

  @Test
  void replayWithAnotherPartitioningWritesNothingNewAndNoFalseDuplicates() throws Exception {
    Events ev = new Events("repart");
    PgSinkWrite w = write(config(db, "repart"));
    batch(w, 0, ev.range(0, 6));
    // The same offsets split over three Spark partitions (other partition and task
    // ids), plus two new events: the old markers-per-partition design wrote some twice
    // as 'duplicate email' and could skip new ones.
    List<InternalRow> all = ev.range(0, 8);
    batch(w, 1, all.subList(0, 3), all.subList(3, 5), all.subList(5, 8));

    assertEquals("2/0/0/6", lastCommit("repart"));
    assertEquals(8, db.count("FROM users WHERE email LIKE 'repart.%'"));
    assertEquals(0, db.count("FROM users_quarantine WHERE kafka_topic = 'repart'"));
  }

  @Test
  void lostCheckpointRestartsAtEpochZeroAndNewEventsAreWritten() throws Exception {
    Events ev = new Events("lost");
    PgSinkWrite w = write(config(db, "lost"));
    batch(w, 0, ev.range(0, 5));
    batch(w, 1, ev.range(5, 10));

    // A new checkpoint numbers epochs from 0 again and re-reads from an older offset.
    batch(write(config(db, "lost")), 0, ev.range(8, 14));

    assertEquals("4/0/0/2", lastCommit("lost"));
    assertEquals(14, db.count("FROM users WHERE email LIKE 'lost.%'"));
    assertEquals("14", db.string("SELECT next_offset FROM stream_sink_offsets"
        + " WHERE sink_id = 'lost'"));
  }

  @Test
  void uncommittedBatchLeavesUsersUntouchedAndItsStagingIsDroppedLater() throws Exception {
    Events ev = new Events("crash");
    PgSinkWrite w = write(config(db, "crash"));
    // Tasks staged and committed, the driver never committed (crash, failed query).
    stage(w, 0, 0, ev.range(0, 3));
    stage(w, 0, 1, ev.range(3, 5));
    // A task attempt that failed (Spark calls abort, then close) leaves nothing.
    try (StagingWriter failed = (StagingWriter) w.createStreamingWriterFactory(() -> 1)
        .createWriter(2, 999_999, 0)) {
      failed.write(ev.valid("crash.x@example.com", 0, 99));
      failed.abort();
    }
    assertEquals(0, db.count("FROM users WHERE email LIKE 'crash.%'"));
    assertEquals(2, stagingTables("crash"));

    // The restarted query stages and commits the batch again.
    batch(write(config(db, "crash")), 0, ev.range(0, 5));

    assertEquals("5/0/0/0", lastCommit("crash"));
    assertEquals(5, db.count("FROM users WHERE email LIKE 'crash.%'"));
    assertEquals(0, stagingTables("crash"));
  }

  @Test
  void stagingEmptiedByACrashRestartIsNotCommitted() throws Exception {
    Events ev = new Events("reset");
    PgSinkWrite w = write(config(db, "reset"));
    StagedTable kept = stage(w, 0, 0, ev.range(0, 3));
    StagedTable reset = stage(w, 0, 1, ev.range(3, 6));
    // What crash recovery does to an UNLOGGED table: its data is gone, the table stays.
    db.execute("TRUNCATE " + SinkTables.quote(reset.table()));

    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> w.commit(0, new WriterCommitMessage[] {kept, reset}));
    assertTrue(e.getMessage().contains("PostgreSQL restarted after a crash"), e.getMessage());
    assertEquals(0, db.count("FROM users WHERE email LIKE 'reset.%'"));
    assertEquals(0, db.count("FROM stream_sink_offsets WHERE sink_id = 'reset'"));

    // Spark stages the batch again and commits it: nothing lost.
    batch(w, 0, ev.range(0, 6));
    assertEquals("6/0/0/0", lastCommit("reset"));
    assertEquals(6, db.count("FROM users WHERE email LIKE 'reset.%'"));
  }

  @Test
  void emptyPartitionsStageNothing() throws Exception {
    PgSinkWrite w = write(config(db, "empty"));
    StagedTable none = stage(w, 0, 0, List.of());
    assertNull(none.table());
    assertEquals(0, stagingTables("empty"));
    w.commit(0, new WriterCommitMessage[] {none});
    assertEquals("0/0/0/0", lastCommit("empty"));
  }

  @Test
  void abortDropsTheStagedTables() throws Exception {
    Events ev = new Events("abort");
    PgSinkWrite w = write(config(db, "abort"));
    WriterCommitMessage[] staged = {stage(w, 3, 0, ev.range(0, 2)), null};
    assertEquals(1, stagingTables("abort"));
    w.abort(3, staged);
    assertEquals(0, stagingTables("abort"));
    assertEquals(0, db.count("FROM users WHERE email LIKE 'abort.%'"));
  }

  @Test
  void racingCommitsOfOneSinkNeverDoubleWrite() throws Exception {
    Events ev = new Events("race");
    PgSinkWrite w = write(config(db, "race"));
    List<InternalRow> rows = ev.range(0, 2_000);
    // The same events staged twice with different partitionings, as by two queries.
    WriterCommitMessage[] a = {stage(w, 0, 0, rows)};
    WriterCommitMessage[] b = {stage(w, 0, 0, rows.subList(0, 1_000)),
        stage(w, 0, 1, rows.subList(1_000, 2_000))};
    ExecutorService pool = Executors.newFixedThreadPool(2);
    List<Future<String>> results = new ArrayList<>();
    for (WriterCommitMessage[] m : List.of(a, b)) {
      Callable<String> commit = () -> {
        try {
          w.commit(0, m);
          return "committed";
        } catch (IllegalStateException e) {
          return e.getMessage();
        }
      };
      results.add(pool.submit(commit));
    }
    List<String> outcomes = new ArrayList<>();
    for (Future<String> f : results) {
      outcomes.add(f.get());
    }
    pool.shutdown();

    assertEquals(2_000, db.count("FROM users WHERE email LIKE 'race.%'"));
    assertEquals(0, db.count("FROM users_quarantine WHERE kafka_topic = 'race'"));
    // The first commit dropped every staging table of the sink, the second one's too.
    assertEquals(1, outcomes.stream().filter("committed"::equals).count(), outcomes.toString());
    assertTrue(outcomes.stream().anyMatch(o -> o.contains("no longer exist")
        && o.contains("is a second query running with this sinkId")), outcomes.toString());
    assertEquals("2000/0/0/0", lastCommit("race"));
  }

  @Test
  void resentEventIsADuplicateEventAndADifferentOneADuplicateEmail() throws Exception {
    Events ev = new Events("dup");
    db.execute("INSERT INTO users (first_name, last_name, email, phone, registration_date,"
        + " loyalty_status) VALUES ('Ada', 'Lovelace', 'dup-old@example.com',"
        + " '+44 20 7946 0000', '2024-01-02 03:04:05.123456', 'Gold')");
    PgSinkWrite w = write(config(db, "dup"));
    batch(w, 0, List.of(
        ev.valid("dup-old@example.com", 0, 0), // re-sent: equal to the existing user
        ev.valid("dup-new@example.com", 0, 1), // candidate
        ev.valid("dup-new@example.com", 0, 2), // re-sent within the batch
        ev.row(null, "Eve", "Other", "dup-new@example.com", null, "2024-01-01 00:00:00", "Gold",
            "eve", null, 0, 3), // another person, same e-mail
        ev.row(null, "Mallory", "X", "dup-old@example.com", null, "2024-01-01 00:00:00",
            "Bronze", "mallory", null, 0, 4)));

    assertEquals("1/4/4/0", lastCommit("dup"));
    assertEquals(List.of("0:duplicate event", "2:duplicate event", "3:duplicate email",
        "4:duplicate email"), db.strings("SELECT kafka_offset || ':' || reason"
        + " FROM users_quarantine WHERE kafka_topic = 'dup' ORDER BY kafka_offset"));
    assertEquals("Ada", db.string("SELECT first_name FROM users"
        + " WHERE email = 'dup-new@example.com'"));
  }

  @Test
  void emailsAreOneAddressWhateverTheirCase() throws Exception {
    Events ev = new Events("case");
    PgSinkWrite w = write(config(db, "case"));
    batch(w, 0, List.of(ev.valid("Case.X@Example.com", 0, 0)));
    batch(w, 1, List.of(ev.valid("case.x@example.com", 0, 1),
        ev.row(null, "Other", "Person", "CASE.X@EXAMPLE.COM", null, "2024-01-01 00:00:00",
            "Gold", "other", null, 0, 2)));

    assertEquals(List.of("case.x@example.com"),
        db.strings("SELECT email FROM users WHERE lower(email) = 'case.x@example.com'"));
    assertEquals(List.of("1:duplicate event", "2:duplicate email"), db.strings(
        "SELECT kafka_offset || ':' || reason FROM users_quarantine"
            + " WHERE kafka_topic = 'case' ORDER BY kafka_offset"));
    // The rule holds for every writer: PostgreSQL refuses a mixed-case e-mail.
    assertThrows(Exception.class, () -> db.execute("INSERT INTO users (first_name,"
        + " last_name, email, registration_date, loyalty_status)"
        + " VALUES ('A', 'B', 'Mixed@Example.com', now(), 'Gold')"));
  }

  @Test
  void rowsBreakingTheUsersConstraintsAreQuarantinedNotFatal() throws Exception {
    Events ev = new Events("constraints");
    PgSinkWrite w = write(config(db, "constraints"));
    String t = "2024-01-01 00:00:00";
    batch(w, 0, List.of(
        ev.row(null, "A", "B", "c1@example.com", null, t, "Platinum", "c1", null, 0, 0),
        ev.row(null, "x".repeat(51), "B", "c2@example.com", null, t, "Gold", "c2", null, 0, 1),
        ev.row(null, "A", "B", "c3@example.com", null, null, "Gold", "c3", null, 0, 2),
        ev.row(null, "A\0", "B", "c4@example.com", null, t, "Gold", "c4", null, 0, 3),
        ev.row(null, "A", "B", " c5@example.com", null, t, "Gold", "c5", null, 0, 4),
        ev.row(null, "A", "B", "c6@example.com", null, "-5000-01-01 00:00:00", "Gold", "c6", null,
            0, 5),
        // 50 characters but 100+ bytes: within VARCHAR(50).
        ev.row(null, "Ünïcødé🙂".repeat(5) + "Ü".repeat(10), "B", "c7@example.com", null, t,
            "Silver", "c7", null, 0, 6)));

    assertEquals("1/6/0/0", lastCommit("constraints"));
    assertEquals(List.of("c1:unknown loyalty_status", "c2:first_name longer than 50 characters",
        "c3:missing registration_date", "c4:first_name contains a NUL character",
        "c5:email has leading or trailing spaces",
        "c6:registration_date outside PostgreSQL's range"),
        db.strings("SELECT raw_payload || ':' || reason FROM users_quarantine"
            + " WHERE kafka_topic = 'constraints' ORDER BY raw_payload"));
  }

  @Test
  void rowsWithoutKafkaCoordinatesFailTheTaskClearly() throws Exception {
    Events ev = new Events("coords");
    PgSinkWrite w = write(config(db, "coords"));
    InternalRow noOffset = ev.valid("coords@example.com", 0, 0);
    noOffset.setNullAt(SinkConfig.OFFSET);
    IOException e = assertThrows(IOException.class, () -> stage(w, 0, 0, List.of(noOffset)));
    assertTrue(e.getMessage().contains("NULL topic, partition or offset"), e.getMessage());
  }

  @Test
  void aCommitBlockedByAHeldLockFailsWithinLockTimeout() throws Exception {
    Events ev = new Events("locked");
    PgSinkWrite w = write(config(db, "locked", "lockTimeoutMs", "500"));
    WriterCommitMessage[] staged = {stage(w, 0, 0, ev.range(0, 3))};
    try (Connection holder = db.connect()) {
      holder.setAutoCommit(false);
      try (Statement st = holder.createStatement()) {
        st.execute("LOCK TABLE users IN SHARE MODE"); // e.g. a long maintenance job
      }
      long start = System.nanoTime();
      IllegalStateException e = assertThrows(IllegalStateException.class,
          () -> w.commit(0, staged));
      long ms = (System.nanoTime() - start) / 1_000_000;
      assertTrue(ms < 5_000, "took " + ms + " ms");
      assertTrue(e.getMessage().contains("not granted within lockTimeoutMs=500"), e.getMessage());
      holder.rollback();
    }
    assertEquals(0, db.count("FROM users WHERE email LIKE 'locked.%'"));
    // Nothing was changed: Spark's retry of the commit goes through.
    w.commit(0, staged);
    assertEquals(3, db.count("FROM users WHERE email LIKE 'locked.%'"));
  }

  @Test
  void appendModeInsertsWithoutBookkeeping() throws Exception {
    Events ev = new Events("Append"); // upper-case e-mails: stored lower-case
    PgSinkWrite w = write(config(db, "append", "mode", "append"));
    List<InternalRow> rows = new ArrayList<>(ev.range(0, 4));
    rows.add(ev.invalid("malformed JSON", 0, 4));
    batch(w, 0, rows);

    assertEquals("4/1/0/0", lastCommit("append"));
    assertEquals(4, db.count("FROM users WHERE email LIKE 'append.%'"));
    assertEquals(0, db.count("FROM stream_sink_offsets WHERE sink_id = 'append'"));
    assertEquals(0, stagingTables("append"));
  }

  @Test
  void createTablesAddsWhatAnOlderSchemaLacks() throws Exception {
    String old = db.schema + "_old";
    db.execute("CREATE SCHEMA " + old + "; CREATE TABLE " + old + ".users_quarantine"
        + " (raw_payload TEXT, reason TEXT NOT NULL, kafka_topic TEXT NOT NULL,"
        + " kafka_partition INTEGER NOT NULL, kafka_offset BIGINT NOT NULL,"
        + " received_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
        + " PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset))");
    try (Connection c = db.connect(); Statement st = c.createStatement()) {
      st.execute("SET search_path TO " + old);
      SinkTables.createIfMissing(c);
      try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_attribute"
          + " WHERE attrelid = 'users_quarantine'::regclass AND attname = 'raw_bytes'");
          ResultSet rs = ps.executeQuery()) {
        rs.next();
        assertEquals(1, rs.getInt(1));
      }
      assertEquals(0, db.count("FROM " + old + ".stream_sink_offsets"));
      assertEquals(0, db.count("FROM " + old + ".stream_sink_commits"));
    } finally {
      db.execute("DROP SCHEMA " + old + " CASCADE");
    }
  }
}
