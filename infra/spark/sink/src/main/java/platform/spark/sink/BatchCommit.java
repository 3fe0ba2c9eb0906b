package platform.spark.sink;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The driver's commit of one (micro-)batch: moves the rows all tasks staged into users
 * and users_quarantine, records the Kafka offsets it has consumed and drops the staging
 * tables, all in ONE PostgreSQL transaction. Readers see the whole batch or none of it,
 * and a batch is applied once however often Spark replays it: rows below the recorded
 * next offset of their Kafka partition are skipped, whatever the epoch number or the
 * Spark partitioning of the replay.
 */
final class BatchCommit {
  static final String DUPLICATE_EVENT = "duplicate event";
  static final String DUPLICATE_EMAIL = "duplicate email";
  private static final String UNIQUE_VIOLATION = "23505";

  /**
   * What one commit did, as stream_sink_commits records it. Skipped rows changed
   * nothing: committed before, or (second guard) already in the quarantine.
   */
  record Counts(long written, long quarantined, long duplicates, long skipped) {
  }

  // The staged rows of Kafka offsets not committed yet, per the progress table: the
  // stream's exactly-once filter. The new progress comes from the tasks' reports.
  private static final String FRESH = """
      WITH staged AS NOT MATERIALIZED (%s),
      fresh AS NOT MATERIALIZED (
          SELECT s.* FROM staged s LEFT JOIN stream_sink_offsets c
               ON c.sink_id = ? AND c.topic = s.kafka_topic
               AND c.kafka_partition = s.kafka_partition
          WHERE c.next_offset IS NULL OR s.kafka_offset >= c.next_offset),
      progress AS (
          INSERT INTO stream_sink_offsets AS o (sink_id, topic, kafka_partition, next_offset)
          SELECT ?, * FROM unnest(?::text[], ?::int[], ?::bigint[])
          ON CONFLICT (sink_id, topic, kafka_partition) DO UPDATE
          SET next_offset = greatest(o.next_offset, excluded.next_offset), updated_at = now()),
      """;

  private static final String INSERT_USERS = """
      INSERT INTO users (first_name, last_name, email, phone, registration_date, loyalty_status)
      """;
  private static final String INSERT_QUARANTINE = """
      INSERT INTO users_quarantine (raw_payload, raw_bytes, reason, kafka_topic, kafka_partition,
                                    kafka_offset)
      """;

  // The usual batch: no e-mail repeats in it or exists in users, so every fresh valid
  // row is a new user. A plain INSERT costs no more than the append baseline; if the
  // assumption is wrong, users' unique index says so and run() takes DEDUPLICATED.
  private static final String NEW_ONLY = FRESH + """
      new_users AS (
          %1$s SELECT first_name, last_name, lower(email), phone, registration_date,
                      loyalty_status
          FROM fresh WHERE reason IS NULL
          RETURNING 1),
      quarantined AS (
          %2$s SELECT raw, raw_bytes, reason, kafka_topic, kafka_partition, kafka_offset
          FROM fresh WHERE reason IS NOT NULL
          ON CONFLICT DO NOTHING
          RETURNING reason)
      SELECT (SELECT count(*) FROM new_users), (SELECT count(*) FROM quarantined), 0
      """.formatted(INSERT_USERS, INSERT_QUARANTINE);

  // Valid rows are ranked per lower-cased e-mail in Kafka order: the first is the
  // candidate, inserted unless the e-mail is in users already; every other one is a
  // duplicate, compared with the existing user (else the candidate) to tell a re-sent
  // event from a conflict. The users lookup is one index probe per row, whatever the
  // size of users.
  private static final String DEDUPLICATED = FRESH + """
      ranked AS (
          SELECT f.first_name, f.last_name, f.norm_email, f.phone, f.registration_date,
                 f.loyalty_status, f.raw, f.raw_bytes, f.kafka_topic, f.kafka_partition,
                 f.kafka_offset, row_number() OVER w AS rank,
                 first_value(f.first_name) OVER w AS first_first_name,
                 first_value(f.last_name) OVER w AS first_last_name,
                 first_value(f.phone) OVER w AS first_phone,
                 first_value(f.registration_date) OVER w AS first_registration_date,
                 first_value(f.loyalty_status) OVER w AS first_loyalty_status
          FROM (SELECT *, lower(email) AS norm_email FROM fresh WHERE reason IS NULL) f
          WINDOW w AS (PARTITION BY f.norm_email
                       ORDER BY f.kafka_topic, f.kafka_partition, f.kafka_offset)),
      classified AS (
          SELECT r.*, CASE
                 WHEN u.email IS NULL AND r.rank = 1 THEN NULL
                 WHEN (r.first_name, r.last_name, r.phone, r.registration_date, r.loyalty_status)
                      IS NOT DISTINCT FROM CASE WHEN u.email IS NULL
                          THEN (r.first_first_name, r.first_last_name, r.first_phone,
                                r.first_registration_date, r.first_loyalty_status)
                          ELSE (u.first_name::text, u.last_name::text, u.phone::text,
                                u.registration_date, u.loyalty_status::text) END
                 THEN '%3$s' ELSE '%4$s' END AS duplicate
          FROM ranked r
          LEFT JOIN LATERAL (SELECT * FROM users WHERE email = r.norm_email LIMIT 1) u ON true),
      new_users AS (
          %1$s SELECT first_name, last_name, norm_email, phone, registration_date,
                      loyalty_status
          FROM classified WHERE duplicate IS NULL
          RETURNING 1),
      quarantined AS (
          %2$s SELECT raw, raw_bytes, reason, kafka_topic, kafka_partition, kafka_offset
          FROM fresh WHERE reason IS NOT NULL
          UNION ALL
          SELECT raw, raw_bytes, duplicate, kafka_topic, kafka_partition, kafka_offset
          FROM classified WHERE duplicate IS NOT NULL
          ON CONFLICT DO NOTHING
          RETURNING reason)
      SELECT (SELECT count(*) FROM new_users), (SELECT count(*) FROM quarantined),
             (SELECT count(*) FROM quarantined WHERE reason IN ('%3$s', '%4$s'))
      """.formatted(INSERT_USERS, INSERT_QUARANTINE, DUPLICATE_EVENT, DUPLICATE_EMAIL);

  // The benchmark baseline: the same staged rows, plain INSERTs, no bookkeeping.
  private static final String APPEND = """
      WITH staged AS NOT MATERIALIZED (%s),
      new_users AS (
          %s SELECT first_name, last_name, lower(email), phone, registration_date,
                    loyalty_status
          FROM staged WHERE reason IS NULL
          RETURNING 1),
      quarantined AS (
          %s SELECT raw, raw_bytes, reason, kafka_topic, kafka_partition, kafka_offset
          FROM staged WHERE reason IS NOT NULL
          RETURNING 1)
      SELECT (SELECT count(*) FROM new_users), (SELECT count(*) FROM quarantined), 0""";

  private static final String STAGING_TABLES = "SELECT relname, pg_relation_size(oid)"
      + " FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
      + " AND starts_with(relname, ?)";
  private static final String RECORD = "INSERT INTO stream_sink_commits (sink_id, epoch,"
      + " rows_written, rows_quarantined, rows_duplicate, rows_skipped)"
      + " VALUES (?, ?, ?, ?, ?, ?)";

  private BatchCommit() {
  }

  /**
   * Commits the batch staged in `tables`. Fails, changing nothing, when one of them is
   * gone: then another commit of the same sink has dropped it (two queries with one
   * sink id) and Spark must stage the batch again.
   */
  static Counts run(SinkConfig config, long epoch, List<StagedTable> tables)
      throws SQLException {
    List<String> ours = tables.stream().map(StagedTable::table).toList();
    try (Connection conn = config.connect()) {
      conn.setAutoCommit(false);
      try (PreparedStatement ps = conn.prepareStatement("SELECT pg_advisory_xact_lock(?)")) {
        ps.setLong(1, SinkTables.sinkHash(config.sinkId));
        ps.executeQuery().close();
      }
      Map<String, Long> all = stagingTables(conn, config.sinkId);
      List<String> missing = ours.stream().filter(t -> !all.containsKey(t)).toList();
      if (!missing.isEmpty()) {
        throw new SQLException("staging table(s) " + missing + " no longer exist: another"
            + " commit of sink '" + config.sinkId + "' dropped them (is a second query"
            + " running with this sinkId?); the batch must be staged again");
      }
      // Crash recovery resets every UNLOGGED table to empty (no pages); committing one
      // would record its offsets as consumed and lose its rows.
      List<String> emptied = tables.stream().filter(t -> t.rows() > 0)
          .map(StagedTable::table).filter(t -> all.get(t) == 0).toList();
      if (!emptied.isEmpty()) {
        throw new SQLException("staging table(s) " + emptied + " are empty although their"
            + " tasks staged rows: PostgreSQL restarted after a crash since and reset them"
            + " (they are UNLOGGED); the batch must be staged again");
      }
      Counts counts = tables.isEmpty() ? new Counts(0, 0, 0, 0) : move(conn, config, tables);
      try (PreparedStatement ps = conn.prepareStatement(RECORD)) {
        ps.setString(1, config.sinkId);
        ps.setLong(2, epoch);
        ps.setLong(3, counts.written());
        ps.setLong(4, counts.quarantined());
        ps.setLong(5, counts.duplicates());
        ps.setLong(6, counts.skipped());
        ps.executeUpdate();
      }
      // Ours, and leftovers of failed attempts or crashed runs of this sink.
      drop(conn, all.keySet());
      conn.commit();
      return counts;
    }
  }

  private static Counts move(Connection conn, SinkConfig config, List<StagedTable> tables)
      throws SQLException {
    String union = tables.stream()
        .map(t -> "SELECT " + SinkTables.STAGE_COLUMNS + " FROM " + SinkTables.quote(t.table()))
        .collect(Collectors.joining(" UNION ALL "));
    long staged = tables.stream().mapToLong(StagedTable::rows).sum();
    if (config.mode == SinkConfig.Mode.APPEND) {
      return counts(conn.prepareStatement(
          APPEND.formatted(union, INSERT_USERS, INSERT_QUARANTINE)), staged);
    }
    Map<StagedTable.KafkaPartition, Long> next = new HashMap<>();
    tables.forEach(t -> t.nextOffsets().forEach((k, v) -> next.merge(k, v, Math::max)));
    Savepoint beforeInsert = conn.setSavepoint();
    try {
      return counts(withProgress(conn, NEW_ONLY.formatted(union), config.sinkId, next), staged);
    } catch (SQLException e) {
      if (!UNIQUE_VIOLATION.equals(e.getSQLState())) {
        throw e;
      }
      conn.rollback(beforeInsert);
      return counts(withProgress(conn, DEDUPLICATED.formatted(union), config.sinkId, next),
          staged);
    }
  }

  private static PreparedStatement withProgress(Connection conn, String sql, String sinkId,
      Map<StagedTable.KafkaPartition, Long> next) throws SQLException {
    List<StagedTable.KafkaPartition> keys = List.copyOf(next.keySet());
    PreparedStatement ps = conn.prepareStatement(sql);
    ps.setString(1, sinkId); // the committed offsets read
    ps.setString(2, sinkId); // and the ones recorded
    ps.setArray(3, conn.createArrayOf("text",
        keys.stream().map(StagedTable.KafkaPartition::topic).toArray()));
    ps.setArray(4, conn.createArrayOf("int4",
        keys.stream().map(StagedTable.KafkaPartition::partition).toArray()));
    ps.setArray(5, conn.createArrayOf("int8", keys.stream().map(next::get).toArray()));
    return ps;
  }

  /** Runs the statement; skipped rows are the staged ones it neither wrote nor quarantined. */
  private static Counts counts(PreparedStatement statement, long staged) throws SQLException {
    try (PreparedStatement ps = statement; ResultSet rs = ps.executeQuery()) {
      rs.next();
      long written = rs.getLong(1), quarantined = rs.getLong(2);
      return new Counts(written, quarantined, rs.getLong(3), staged - written - quarantined);
    }
  }

  /** The sink's staging tables and their size in bytes (0: no page, nothing staged). */
  static Map<String, Long> stagingTables(Connection conn, String sinkId) throws SQLException {
    Map<String, Long> tables = new HashMap<>();
    try (PreparedStatement ps = conn.prepareStatement(STAGING_TABLES)) {
      ps.setString(1, SinkTables.stagePrefix(sinkId));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          tables.put(rs.getString(1), rs.getLong(2));
        }
      }
    }
    return tables;
  }

  static void drop(Connection conn, Iterable<String> tables) throws SQLException {
    List<String> names = new ArrayList<>();
    tables.forEach(t -> names.add(SinkTables.quote(t)));
    if (!names.isEmpty()) {
      try (Statement st = conn.createStatement()) {
        st.execute("DROP TABLE IF EXISTS " + String.join(", ", names));
      }
    }
  }
}
