package platform.spark.sink;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLIntegrityConstraintViolationException;
import java.sql.Savepoint;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The driver's commit of one batch of change events to a MySQL replica, in ONE
 * transaction with the progress (next Kafka offset per partition, cdc_sink_offsets) and
 * a commit record (cdc_sink_commits): a reader sees the whole batch or none of it, and
 * a replay (crash, lost checkpoint, other Spark partitioning) applies nothing twice
 * because events below the recorded offset are skipped.
 *
 * <p>Within a batch the last change of a key wins, in Kafka order (Debezium keys each
 * event by the row's primary key, so one key's changes share a partition, in source
 * commit order). Applying a key is DELETE then INSERT of its final row, never MySQL's
 * upsert: ON DUPLICATE KEY UPDATE would also match a different row through a secondary
 * unique key (users.email) and rewrite it. When the reduced batch still collides on such
 * a key (two rows swapping e-mails), the batch is applied event by event in Kafka order,
 * which retraces the states PostgreSQL went through.
 */
final class ReplicaCommit {
  private static final int CHUNK = 500;

  record Counts(long changes, long upserted, long deleted, long quarantined, long skipped) {
  }

  /** The replica was reloaded (jobs replicate) after this query started. */
  static final class GenerationChanged extends SQLException {
    GenerationChanged(String message) {
      super(message);
    }
  }

  /** A change event carries columns the replica lacks: the table's apply stops. */
  static final class UnknownColumns extends SQLException {
    UnknownColumns(String message) {
      super(message);
    }
  }

  private ReplicaCommit() {
  }

  static Counts run(ReplicaConfig config, List<String> key, long epoch, List<Change> all)
      throws SQLException {
    try (Connection conn = config.target.connect()) {
      conn.setAutoCommit(false);
      try {
        lock(conn, config);
        Counts counts = apply(conn, config, key, epoch, all);
        conn.commit();
        return counts;
      } catch (SQLException | RuntimeException e) {
        conn.rollback();
        throw e;
      } finally {
        if (config.lockName != null) {
          try (PreparedStatement ps = conn.prepareStatement("DO RELEASE_LOCK(?)")) {
            ps.setString(1, config.lockName);
            ps.execute();
          } catch (SQLException ignored) {
            // closing the connection releases it too
          }
        }
      }
    }
  }

  // The named lock jobs replicate holds while it reloads the table: a commit never
  // lands between its copy and its swap.
  private static void lock(Connection conn, ReplicaConfig config) throws SQLException {
    if (config.lockName == null) {
      return;
    }
    try (PreparedStatement ps = conn.prepareStatement("SELECT GET_LOCK(?, ?)")) {
      ps.setString(1, config.lockName);
      ps.setInt(2, config.lockWaitSeconds);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
        if (rs.getInt(1) != 1) {
          throw new SQLException("MySQL table " + config.table + " is busy: lock "
              + config.lockName + " (held by jobs replicate?) not granted within "
              + config.lockWaitSeconds + "s");
        }
      }
    }
  }

  private static Counts apply(Connection conn, ReplicaConfig config, List<String> key,
      long epoch, List<Change> all) throws SQLException {
    String sinkId = config.target.sinkId;
    Map<String, Long> next = new HashMap<>();
    for (Change c : all) {
      next.merge(c.topic() + "\u0000" + c.partition(), c.offset() + 1, Math::max);
    }
    Map<String, Long> committed = progress(conn, config, next.keySet());
    List<Change> fresh = new ArrayList<>();
    for (Change c : all) {
      Long done = committed.get(c.topic() + "\u0000" + c.partition());
      if (done == null || c.offset() >= done) {
        fresh.add(c);
      }
    }
    fresh.sort(Comparator.comparingLong(Change::offset).thenComparingInt(Change::partition));
    for (Change c : fresh) {
      if (c.kind() == Change.Kind.UNKNOWN_COLUMNS) {
        throw new UnknownColumns("table " + config.table + ": the change event at "
            + c.topic() + "[" + c.partition() + "]@" + c.offset() + " has column(s) "
            + c.reason() + " that the MySQL replica does not have; nothing of "
            + config.table + " is applied until the replica has them (ALTER TABLE "
            + config.table + " ADD COLUMN ..., or jobs replicate after adding them to"
            + " infra/db/mysql/schema.sql), then restart jobs cdc");
      }
    }
    long quarantined = quarantine(conn, config, fresh);
    long tombstones = fresh.stream().filter(c -> c.kind() == Change.Kind.TOMBSTONE).count();
    // A TRUNCATE empties the table: what came before it in the batch does not matter.
    int truncatedAt = -1;
    for (int i = 0; i < fresh.size(); i++) {
      if (fresh.get(i).kind() == Change.Kind.TRUNCATE) {
        truncatedAt = i;
      }
    }
    long truncated = 0;
    if (truncatedAt >= 0) {
      try (PreparedStatement ps = conn.prepareStatement("DELETE FROM " + quote(config.table))) {
        truncated = ps.executeUpdate();
      }
    }
    List<Change> rowChanges = fresh.subList(truncatedAt + 1, fresh.size()).stream()
        .filter(c -> c.kind() == Change.Kind.UPSERT || c.kind() == Change.Kind.DELETE)
        .toList();
    int[] keyAt = keyPositions(config, key);
    Map<List<Object>, Change> last = new LinkedHashMap<>();
    for (Change c : rowChanges) {
      List<Object> k = keyOf(c, keyAt);
      last.remove(k); // re-inserted: the map iterates in the order of each key's last change
      last.put(k, c);
    }
    Savepoint before = conn.setSavepoint();
    try {
      deleteKeys(conn, config, key, new ArrayList<>(last.keySet()));
      insertRows(conn, config, last.values().stream()
          .filter(c -> c.kind() == Change.Kind.UPSERT).toList());
    } catch (SQLException e) {
      if (!duplicateKey(e)) {
        throw e;
      }
      conn.rollback(before);
      for (Change c : rowChanges) {
        deleteKeys(conn, config, key, List.of(keyOf(c, keyAt)));
        if (c.kind() == Change.Kind.UPSERT) {
          insertRows(conn, config, List.of(c));
        }
      }
    }
    for (Map.Entry<String, Long> e : next.entrySet()) {
      String[] tp = e.getKey().split("\u0000", 2);
      try (PreparedStatement ps = conn.prepareStatement("UPDATE cdc_sink_offsets"
          + " SET next_offset = GREATEST(next_offset, ?)"
          + " WHERE sink_id = ? AND topic = ? AND kafka_partition = ?")) {
        ps.setLong(1, e.getValue());
        ps.setString(2, sinkId);
        ps.setString(3, tp[0]);
        ps.setInt(4, Integer.parseInt(tp[1]));
        ps.executeUpdate();
      }
    }
    long upserted = last.values().stream().filter(c -> c.kind() == Change.Kind.UPSERT).count();
    Counts counts = new Counts(rowChanges.size() + (truncatedAt >= 0 ? 1 : 0), upserted,
        last.size() - upserted + truncated, quarantined, all.size() - fresh.size() + tombstones);
    try (PreparedStatement ps = conn.prepareStatement("INSERT INTO cdc_sink_commits"
        + " (sink_id, target_table, epoch, changes, upserted, deleted, quarantined, skipped)"
        + " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
      ps.setString(1, sinkId);
      ps.setString(2, config.table);
      ps.setLong(3, epoch);
      ps.setLong(4, counts.changes());
      ps.setLong(5, counts.upserted());
      ps.setLong(6, counts.deleted());
      ps.setLong(7, counts.quarantined());
      ps.setLong(8, counts.skipped());
      ps.executeUpdate();
    }
    return counts;
  }

  /**
   * Locks this sink's progress rows (creating missing ones) and returns them; fails when
   * jobs replicate reloaded the table since the query started (its generation moved):
   * the events since its snapshot must be read again from the position MySQL now holds.
   */
  private static Map<String, Long> progress(Connection conn, ReplicaConfig config,
      Iterable<String> partitions) throws SQLException {
    String sinkId = config.target.sinkId;
    try (PreparedStatement ps = conn.prepareStatement("INSERT IGNORE INTO cdc_sink_offsets"
        + " (sink_id, topic, kafka_partition, target_table, next_offset, generation)"
        + " VALUES (?, ?, ?, ?, 0, ?)")) {
      for (String p : partitions) {
        String[] tp = p.split("\u0000", 2);
        ps.setString(1, sinkId);
        ps.setString(2, tp[0]);
        ps.setInt(3, Integer.parseInt(tp[1]));
        ps.setString(4, config.table);
        ps.setLong(5, config.generation);
        ps.addBatch();
      }
      ps.executeBatch();
    }
    Map<String, Long> committed = new HashMap<>();
    try (PreparedStatement ps = conn.prepareStatement("SELECT topic, kafka_partition,"
        + " next_offset, generation FROM cdc_sink_offsets WHERE sink_id = ? FOR UPDATE")) {
      ps.setString(1, sinkId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          if (rs.getLong(4) != config.generation) {
            throw new GenerationChanged("the replica " + config.table + " was reloaded by jobs"
                + " replicate (progress generation " + rs.getLong(4) + ", this query started"
                + " at " + config.generation + "); the query must restart from the position"
                + " MySQL holds");
          }
          committed.put(rs.getString(1) + "\u0000" + rs.getInt(2), rs.getLong(3));
        }
      }
    }
    return committed;
  }

  private static long quarantine(Connection conn, ReplicaConfig config, List<Change> fresh)
      throws SQLException {
    long n = 0;
    try (PreparedStatement ps = conn.prepareStatement("INSERT IGNORE INTO cdc_quarantine"
        + " (topic, kafka_partition, kafka_offset, sink_id, target_table, reason, raw_payload)"
        + " VALUES (?, ?, ?, ?, ?, ?, ?)")) {
      for (Change c : fresh) {
        if (c.kind() != Change.Kind.QUARANTINE) {
          continue;
        }
        ps.setString(1, c.topic());
        ps.setInt(2, c.partition());
        ps.setLong(3, c.offset());
        ps.setString(4, config.target.sinkId);
        ps.setString(5, config.table);
        ps.setString(6, c.reason());
        ps.setBytes(7, c.raw());
        ps.addBatch();
        n++;
      }
      if (n > 0) {
        ps.executeBatch();
      }
    }
    return n;
  }

  private static int[] keyPositions(ReplicaConfig config, List<String> key) {
    List<String> columns = Arrays.asList(config.columns);
    return key.stream().mapToInt(columns::indexOf).toArray();
  }

  private static List<Object> keyOf(Change c, int[] keyAt) throws SQLException {
    List<Object> k = new ArrayList<>(keyAt.length);
    for (int i : keyAt) {
      Object v = c.values()[i];
      if (v == null) {
        throw new SQLException("the change event at " + c.topic() + "[" + c.partition() + "]@"
            + c.offset() + " has no value for a key column");
      }
      // One Java type per key value, so 5 (int) and 5L (bigint) are the same key.
      k.add(v instanceof Number n && !(v instanceof java.math.BigDecimal) ? n.longValue() : v);
    }
    return k;
  }

  private static void deleteKeys(Connection conn, ReplicaConfig config, List<String> key,
      List<List<Object>> keys) throws SQLException {
    String cols = key.stream().map(ReplicaCommit::quote).collect(Collectors.joining(", "));
    String one = "(" + String.join(", ", java.util.Collections.nCopies(key.size(), "?")) + ")";
    for (int from = 0; from < keys.size(); from += CHUNK) {
      List<List<Object>> chunk = keys.subList(from, Math.min(keys.size(), from + CHUNK));
      String sql = "DELETE FROM " + quote(config.table) + " WHERE (" + cols + ") IN ("
          + String.join(", ", java.util.Collections.nCopies(chunk.size(), one)) + ")";
      try (PreparedStatement ps = conn.prepareStatement(sql)) {
        int i = 1;
        for (List<Object> k : chunk) {
          for (Object v : k) {
            bind(ps, i++, v);
          }
        }
        ps.executeUpdate();
      }
    }
  }

  private static void insertRows(Connection conn, ReplicaConfig config, List<Change> rows)
      throws SQLException {
    if (rows.isEmpty()) {
      return;
    }
    String sql = "INSERT INTO " + quote(config.table) + " ("
        + Arrays.stream(config.columns).map(ReplicaCommit::quote)
            .collect(Collectors.joining(", "))
        + ") VALUES ("
        + String.join(", ", java.util.Collections.nCopies(config.columns.length, "?")) + ")";
    try (PreparedStatement ps = conn.prepareStatement(sql)) {
      int pending = 0;
      for (Change c : rows) {
        for (int i = 0; i < config.columns.length; i++) {
          bind(ps, i + 1, c.values()[i]);
        }
        ps.addBatch();
        if (++pending == CHUNK) {
          ps.executeBatch();
          pending = 0;
        }
      }
      if (pending > 0) {
        ps.executeBatch();
      }
    }
  }

  private static final java.time.format.DateTimeFormatter DATETIME =
      java.time.format.DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSSSSS");

  /**
   * Wall clocks go as text: Connector/J drops the fraction of a LocalDateTime on servers
   * announcing an old version (MariaDB says 5.5.5-...), and a java.sql.Timestamp would
   * be shifted by the JVM's time zone.
   */
  private static void bind(PreparedStatement ps, int at, Object v) throws SQLException {
    if (v instanceof java.time.LocalDateTime t) {
      ps.setString(at, DATETIME.format(t));
    } else if (v instanceof java.time.LocalDate d) {
      ps.setString(at, d.toString());
    } else {
      ps.setObject(at, v);
    }
  }

  // A batch reports MySQL's duplicate-key error (1062) wrapped in a BatchUpdateException.
  private static boolean duplicateKey(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof SQLIntegrityConstraintViolationException
          || (t instanceof SQLException s && s.getErrorCode() == 1062)) {
        return true;
      }
    }
    return false;
  }

  static String quote(String identifier) {
    return "`" + identifier.replace("`", "``") + "`";
  }
}
