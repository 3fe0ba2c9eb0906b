package platform.spark.sink;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The driver's commit of one batch to the data vault, in ONE PostgreSQL transaction with
 * the progress (next Kafka offset per partition, vault_sink_offsets) and a commit record
 * (vault_sink_commits): readers see whole batches, and a replay (crash, lost checkpoint,
 * other partitioning) loads nothing twice because events below the offsets are skipped.
 *
 * <p>Rules, one set-based statement per target table: hubs and links are inserted when
 * their hash key is absent; a satellite row is inserted when its hash diff differs from
 * the previous row of its key (in Kafka order: the batch's earlier rows of the key, else
 * the table's latest), so an update adds one row and an unchanged re-delivery none.
 * Satellites are never updated: a delete is a row with is_deleted.
 */
final class VaultCommit {
  static final List<String> SINK_TABLES =
      List.of("vault_sink_offsets", "vault_sink_commits", "vault_quarantine");
  private static final List<String> KIND_ORDER = List.of("hub", "link", "sat");

  record Counts(long events, long hubs, long links, long satellites, long quarantined,
      long skipped) {
  }

  private VaultCommit() {
  }

  static Counts run(VaultConfig config, long epoch, List<VaultRow> all) throws SQLException {
    try (Connection conn = config.target.connect()) {
      conn.setAutoCommit(false);
      try {
        Counts counts = apply(conn, config.target.sinkId, epoch, all);
        conn.commit();
        return counts;
      } catch (SQLException | RuntimeException e) {
        conn.rollback();
        throw e;
      }
    }
  }

  static Counts apply(Connection conn, String sinkId, long epoch, List<VaultRow> all)
      throws SQLException {
    // One writer per sink at a time (two jobs dwh must not interleave satellite rows).
    try (PreparedStatement ps = conn.prepareStatement(
        "SELECT pg_advisory_xact_lock(hashtext('vault:' || ?))")) {
      ps.setString(1, sinkId);
      ps.execute();
    }
    Map<String, Long> committed = new HashMap<>();
    try (PreparedStatement ps = conn.prepareStatement("SELECT topic, kafka_partition,"
        + " next_offset FROM vault_sink_offsets WHERE sink_id = ?")) {
      ps.setString(1, sinkId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          committed.put(rs.getString(1) + "\u0000" + rs.getInt(2), rs.getLong(3));
        }
      }
    }
    Map<String, Long> next = new HashMap<>();
    Set<String> events = new HashSet<>();
    Set<String> replayed = new HashSet<>();
    List<VaultRow> fresh = new ArrayList<>();
    List<VaultRow> quarantine = new ArrayList<>();
    for (VaultRow r : all) {
      String tp = r.topic() + "\u0000" + r.partition();
      next.merge(tp, r.offset() + 1, Math::max);
      String event = tp + "\u0000" + r.offset();
      Long done = committed.get(tp);
      if (done != null && r.offset() < done) {
        replayed.add(event);
        continue;
      }
      events.add(event);
      if (r.reason() != null) {
        quarantine.add(r);
      } else if (r.kind() != null && !r.kind().equals("skip")) {
        fresh.add(r);
      }
    }
    long quarantined = quarantine(conn, quarantine);
    fresh.sort(Comparator.comparingLong(VaultRow::offset));
    Map<String, List<VaultRow>> byTarget = new LinkedHashMap<>();
    for (VaultRow r : fresh) {
      byTarget.computeIfAbsent(r.target(), t -> new ArrayList<>()).add(r);
    }
    long[] inserted = new long[KIND_ORDER.size()];
    for (int k = 0; k < KIND_ORDER.size(); k++) {
      for (Map.Entry<String, List<VaultRow>> e : byTarget.entrySet()) {
        String table = identifier(e.getKey());
        List<VaultRow> rows = e.getValue();
        String kind = rows.get(0).kind().equals("truncate") ? "sat" : rows.get(0).kind();
        if (!KIND_ORDER.contains(kind)) {
          throw new SQLException("unknown vault row kind '" + kind + "' for " + table);
        }
        if (!kind.equals(KIND_ORDER.get(k))) {
          continue;
        }
        inserted[k] += kind.equals("sat") ? satellite(conn, table, rows)
            : insertAbsent(conn, table, rows);
      }
    }
    for (Map.Entry<String, Long> e : next.entrySet()) {
      String[] tp = e.getKey().split("\u0000", 2);
      try (PreparedStatement ps = conn.prepareStatement("INSERT INTO vault_sink_offsets"
          + " (sink_id, topic, kafka_partition, next_offset) VALUES (?, ?, ?, ?)"
          + " ON CONFLICT (sink_id, topic, kafka_partition) DO UPDATE"
          + " SET next_offset = GREATEST(vault_sink_offsets.next_offset, EXCLUDED.next_offset),"
          + " updated_at = now()")) {
        ps.setString(1, sinkId);
        ps.setString(2, tp[0]);
        ps.setInt(3, Integer.parseInt(tp[1]));
        ps.setLong(4, e.getValue());
        ps.executeUpdate();
      }
    }
    Counts counts = new Counts(events.size(), inserted[0], inserted[1], inserted[2],
        quarantined, replayed.size());
    try (PreparedStatement ps = conn.prepareStatement("INSERT INTO vault_sink_commits"
        + " (sink_id, epoch, events, hub_rows, link_rows, satellite_rows, quarantined,"
        + " skipped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
      ps.setString(1, sinkId);
      ps.setLong(2, epoch);
      ps.setLong(3, counts.events());
      ps.setLong(4, counts.hubs());
      ps.setLong(5, counts.links());
      ps.setLong(6, counts.satellites());
      ps.setLong(7, counts.quarantined());
      ps.setLong(8, counts.skipped());
      ps.executeUpdate();
    }
    return counts;
  }

  private static long quarantine(Connection conn, List<VaultRow> rows) throws SQLException {
    if (rows.isEmpty()) {
      return 0;
    }
    try (PreparedStatement ps = conn.prepareStatement("INSERT INTO vault_quarantine"
        + " (topic, kafka_partition, kafka_offset, reason, raw_bytes) VALUES (?, ?, ?, ?, ?)"
        + " ON CONFLICT DO NOTHING")) {
      for (VaultRow r : rows) {
        ps.setString(1, r.topic());
        ps.setInt(2, r.partition());
        ps.setLong(3, r.offset());
        ps.setString(4, r.reason());
        ps.setBytes(5, r.raw());
        ps.addBatch();
      }
      long n = 0;
      for (int c : ps.executeBatch()) {
        n += Math.max(c, 0);
      }
      return n;
    }
  }

  /** Hubs and links: rows whose hash key (the primary key) is new. */
  private static long insertAbsent(Connection conn, String table, List<VaultRow> rows)
      throws SQLException {
    try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table
        + " SELECT * FROM jsonb_populate_recordset(" + base(table) + ", ?::jsonb)"
        + " ON CONFLICT DO NOTHING")) {
      ps.setString(1, json(rows));
      return ps.executeUpdate();
    }
  }

  /**
   * A satellite's rows in Kafka order, cut at each truncate (which marks every live key
   * deleted, as of its own position).
   */
  private static long satellite(Connection conn, String table, List<VaultRow> rows)
      throws SQLException {
    long n = 0;
    List<VaultRow> run = new ArrayList<>();
    for (VaultRow r : rows) {
      if (r.kind().equals("truncate")) {
        n += changedRows(conn, table, run);
        run.clear();
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table
            + " (hk, load_ts, applied_ts, seq, record_source, hashdiff, is_deleted)"
            + " SELECT l.hk, j.load_ts, j.applied_ts, j.seq, j.record_source, j.hashdiff, true"
            + " FROM (SELECT DISTINCT ON (hk) hk, is_deleted FROM " + table
            + " ORDER BY hk, seq DESC) l, jsonb_populate_record(" + base(table) + ", ?::jsonb) j"
            + " WHERE NOT l.is_deleted ON CONFLICT DO NOTHING")) {
          ps.setString(1, r.row());
          n += ps.executeUpdate();
        }
      } else {
        run.add(r);
      }
    }
    return n + changedRows(conn, table, run);
  }

  private static long changedRows(Connection conn, String table, List<VaultRow> rows)
      throws SQLException {
    if (rows.isEmpty()) {
      return 0;
    }
    try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table
        + " SELECT (b.r).* FROM (SELECT r, lag(r.hashdiff) OVER (PARTITION BY r.hk"
        + " ORDER BY r.seq) AS prev FROM jsonb_populate_recordset(" + base(table)
        + ", ?::jsonb) r) b WHERE (b.r).hashdiff IS DISTINCT FROM COALESCE(b.prev,"
        + " (SELECT l.hashdiff FROM " + table + " l WHERE l.hk = (b.r).hk"
        + " ORDER BY l.seq DESC LIMIT 1)) ON CONFLICT DO NOTHING")) {
      ps.setString(1, json(rows));
      return ps.executeUpdate();
    }
  }

  /**
   * The record a row's JSON is laid over: what the JSON leaves out is the commit's time.
   * The Spark plan sends no load time, so its generated code stays the same from batch
   * to batch (a per-batch constant would be compiled again for every micro-batch).
   */
  private static String base(String table) {
    return "jsonb_populate_record(NULL::" + table
        + ", jsonb_build_object('load_ts', now(), 'applied_ts', now()))";
  }

  private static String json(List<VaultRow> rows) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < rows.size(); i++) {
      if (i > 0) {
        sb.append(',');
      }
      sb.append(rows.get(i).row());
    }
    return sb.append(']').toString();
  }

  private static String identifier(String name) throws SQLException {
    if (name == null || !name.matches("[a-z_][a-z0-9_]{0,62}")) {
      throw new SQLException("vault target '" + name + "' is not a plain table name");
    }
    return name;
  }
}
