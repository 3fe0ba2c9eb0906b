package platform.spark.sink;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HexFormat;
import java.util.List;

/**
 * The sink's own tables (the same DDL as infra/db/postgres/schema.sql; a test keeps the
 * two identical) and its per-task staging tables.
 */
final class SinkTables {
  /** Statements of schema.sql that create or upgrade the sink's tables, in order. */
  static final List<String> DDL = List.of("""
      CREATE TABLE IF NOT EXISTS users_quarantine (
          raw_payload     TEXT,
          reason          TEXT        NOT NULL,
          kafka_topic     TEXT        NOT NULL,
          kafka_partition INTEGER     NOT NULL,
          kafka_offset    BIGINT      NOT NULL,
          received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
          raw_bytes       BYTEA,
          PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset)
      )""",
      "ALTER TABLE users_quarantine ADD COLUMN IF NOT EXISTS raw_bytes BYTEA",
      """
      CREATE TABLE IF NOT EXISTS stream_sink_offsets (
          sink_id         TEXT        NOT NULL,
          topic           TEXT        NOT NULL,
          kafka_partition INTEGER     NOT NULL,
          next_offset     BIGINT      NOT NULL,
          updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
          PRIMARY KEY (sink_id, topic, kafka_partition)
      )""",
      """
      CREATE TABLE IF NOT EXISTS stream_sink_commits (
          commit_id        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          sink_id          TEXT        NOT NULL,
          epoch            BIGINT      NOT NULL,
          rows_written     BIGINT      NOT NULL,
          rows_quarantined BIGINT      NOT NULL,
          rows_duplicate   BIGINT      NOT NULL,
          rows_skipped     BIGINT      NOT NULL,
          committed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
      )""",
      "CREATE INDEX IF NOT EXISTS stream_sink_commits_sink_idx"
          + " ON stream_sink_commits (sink_id, commit_id)");

  // Everything DDL creates: when all of it exists, no DDL runs (which would need the
  // CREATE privilege on the schema even with IF NOT EXISTS).
  private static final String ALL_PRESENT = """
      SELECT to_regclass('stream_sink_offsets') IS NOT NULL
         AND to_regclass('stream_sink_commits') IS NOT NULL
         AND to_regclass('stream_sink_commits_sink_idx') IS NOT NULL
         AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('users_quarantine')
                     AND attname = 'raw_bytes' AND NOT attisdropped)""";

  /** Columns of a staging table, in the order the writers COPY them. */
  static final String STAGE_COLUMNS = "reason, first_name, last_name, email, phone,"
      + " registration_date, loyalty_status, raw, raw_bytes, kafka_topic, kafka_partition,"
      + " kafka_offset";
  static final int STAGE_COLUMN_COUNT = 12;

  private static final String STAGE_PREFIX = "stream_stage_";

  private SinkTables() {
  }

  static void createIfMissing(Connection conn) throws SQLException {
    try (Statement st = conn.createStatement();
        ResultSet rs = st.executeQuery(ALL_PRESENT)) {
      rs.next();
      if (rs.getBoolean(1)) {
        return;
      }
      for (String ddl : DDL) {
        st.execute(ddl);
      }
    }
  }

  /**
   * 64 bits of SHA-256 over the sink id: names the sink's staging tables and keys the
   * advisory lock that serialises its commits.
   */
  static long sinkHash(String sinkId) {
    try {
      byte[] d = MessageDigest.getInstance("SHA-256").digest(sinkId.getBytes(StandardCharsets.UTF_8));
      long h = 0;
      for (int i = 0; i < 8; i++) {
        h = (h << 8) | (d[i] & 0xFF);
      }
      return h;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every Java runtime", e);
    }
  }

  /** The common prefix of all staging tables of a sink. */
  static String stagePrefix(String sinkId) {
    return STAGE_PREFIX + HexFormat.of().toHexDigits(sinkHash(sinkId)) + "_";
  }

  /**
   * stream_stage_&lt;16 hex of the sink hash&gt;_&lt;partition id&gt;_&lt;task id&gt;: at most
   * 13 + 16 + 1 + 10 + 1 + 20 = 61 characters, under PostgreSQL's 63. Spark's task id is
   * unique per task attempt within the application. The epoch is left out: with a
   * (negative, 20-character) batch-write epoch the name would not fit, and it is in
   * stream_sink_commits and in the logs anyway.
   */
  static String stageName(String sinkId, int partitionId, long taskId) {
    return stagePrefix(sinkId) + Integer.toUnsignedString(partitionId) + "_"
        + Long.toUnsignedString(taskId);
  }

  /**
   * UNLOGGED and without indexes: it lives only until the driver's commit, and a crash
   * that empties it just makes Spark stage the batch again. The DROP clears a leftover
   * of a crashed earlier run whose task ids restarted at the same number.
   */
  static String createStage(String table) {
    return "DROP TABLE IF EXISTS " + quote(table) + "; CREATE UNLOGGED TABLE " + quote(table)
        + " ("
        + "reason TEXT, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,"
        + " registration_date TIMESTAMP, loyalty_status TEXT, raw TEXT, raw_bytes BYTEA,"
        + " kafka_topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL,"
        + " kafka_offset BIGINT NOT NULL)";
  }

  // FREEZE: the table was created in this transaction, so its rows can be written
  // frozen and the driver's read does not have to set hint bits on every page.
  static String copyInto(String table) {
    return "COPY " + quote(table) + " (" + STAGE_COLUMNS + ") FROM STDIN (FORMAT binary, FREEZE)";
  }

  /** A quoted identifier: names listed from pg_class go into SQL text as they are. */
  static String quote(String table) {
    return "\"" + table.replace("\"", "\"\"") + "\"";
  }
}
