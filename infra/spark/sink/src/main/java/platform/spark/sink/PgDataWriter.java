package platform.spark.sink;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;

/**
 * Writes one partition of one batch in a single PostgreSQL transaction: first the
 * progress marker (sink, batch, partition), then the rows in chunks of batchSize, each
 * chunk one round trip (INSERT ... SELECT FROM unnest(arrays)). If the marker already
 * exists the batch is a replay and nothing is written. Inserting the marker first also
 * serialises concurrent attempts of the same partition: the second one waits on the
 * marker's key until the first commits (then it skips) or rolls back (then it writes).
 */
final class PgDataWriter implements DataWriter<InternalRow> {
  static final String DUPLICATE_EMAIL = "duplicate email";

  private static final String INSERT_MARKER =
      "INSERT INTO stream_sink_progress (sink_id, batch_id, partition_id) VALUES (?, ?, ?)"
          + " ON CONFLICT DO NOTHING";
  private static final String UPDATE_MARKER =
      "UPDATE stream_sink_progress SET rows_written = ?, rows_quarantined = ?,"
          + " committed_at = now() WHERE sink_id = ? AND batch_id = ? AND partition_id = ?";
  // ON CONFLICT keeps an e-mail that already exists from failing the transaction;
  // RETURNING tells which rows went in, the others are quarantined.
  private static final String INSERT_USERS =
      "INSERT INTO users (first_name, last_name, email, phone, registration_date,"
          + " loyalty_status) SELECT * FROM unnest(?::text[], ?::text[], ?::text[],"
          + " ?::text[], ?::timestamp[], ?::text[]) ON CONFLICT (email) DO NOTHING"
          + " RETURNING email";
  // The Kafka coordinates are the key: an event re-read after a lost checkpoint is not
  // quarantined twice.
  private static final String INSERT_QUARANTINE =
      "INSERT INTO users_quarantine (raw_payload, reason, kafka_topic, kafka_partition,"
          + " kafka_offset) SELECT * FROM unnest(?::text[], ?::text[], ?::text[],"
          + " ?::int[], ?::bigint[]) ON CONFLICT DO NOTHING";

  private static final DateTimeFormatter PG_TIMESTAMP =
      DateTimeFormatter.ofPattern("uuuu-MM-dd HH:mm:ss.SSSSSS");
  private static final Set<String> LOYALTY = Set.of("Gold", "Silver", "Bronze");

  private record User(String firstName, String lastName, String email, String phone,
      String registrationDate, String loyaltyStatus, String raw, String topic,
      Integer partition, Long offset) {
  }

  private record Rejected(String raw, String reason, String topic, Integer partition,
      Long offset) {
  }

  private final SinkConfig config;
  private final long batchId;
  private final int partitionId;
  private final ZoneId zone;

  private Connection conn; // opened on the first row: empty partitions cost nothing
  private boolean replay;
  private boolean done;
  private final Set<String> emailsInBatch = new HashSet<>();
  private final List<User> users = new ArrayList<>();
  private final List<Rejected> rejected = new ArrayList<>();
  private long written, quarantined, duplicates, skipped;

  PgDataWriter(SinkConfig config, long batchId, int partitionId) {
    this.config = config;
    this.batchId = batchId;
    this.partitionId = partitionId;
    this.zone = ZoneId.of(config.timeZone);
  }

  @Override
  public void write(InternalRow row) throws IOException {
    try {
      if (conn == null) {
        begin();
      }
      if (replay) {
        skipped++;
        return;
      }
      route(row);
      if (users.size() + rejected.size() >= config.batchSize) {
        flush();
      }
    } catch (SQLException e) {
      throw failure(e);
    }
  }

  private void begin() throws SQLException {
    conn = config.connect();
    conn.setAutoCommit(false);
    try (PreparedStatement ps = conn.prepareStatement(INSERT_MARKER)) {
      ps.setString(1, config.sinkId);
      ps.setLong(2, batchId);
      ps.setInt(3, partitionId);
      replay = ps.executeUpdate() == 0;
    }
    if (replay) {
      // Already committed by an earlier attempt: give the connection back now.
      closeQuietly();
    }
  }

  private void route(InternalRow row) {
    int[] at = config.ordinals;
    String raw = text(row, at[SinkConfig.RAW]);
    String topic = text(row, at[SinkConfig.TOPIC]);
    Integer partition = row.isNullAt(at[SinkConfig.PARTITION])
        ? null : row.getInt(at[SinkConfig.PARTITION]);
    Long offset = row.isNullAt(at[SinkConfig.OFFSET]) ? null : row.getLong(at[SinkConfig.OFFSET]);

    String reason = text(row, at[SinkConfig.REASON]);
    if (reason != null) {
      rejected.add(new Rejected(raw, reason, topic, partition, offset));
      return;
    }
    User u = new User(text(row, at[SinkConfig.FIRST_NAME]), text(row, at[SinkConfig.LAST_NAME]),
        text(row, at[SinkConfig.EMAIL]), text(row, at[SinkConfig.PHONE]),
        timestamp(row, at[SinkConfig.REGISTRATION_DATE]),
        text(row, at[SinkConfig.LOYALTY_STATUS]), raw, topic, partition, offset);
    reason = violation(u);
    if (reason == null && !emailsInBatch.add(u.email())) {
      reason = DUPLICATE_EMAIL;
      duplicates++;
    }
    if (reason == null) {
      users.add(u);
    } else {
      rejected.add(new Rejected(raw, reason, topic, partition, offset));
    }
  }

  /**
   * The users table's own constraints, checked here so that a row the job's validation
   * let through is quarantined instead of failing the whole batch (and the stream).
   */
  private static String violation(User u) {
    String r;
    if ((r = checkText("first_name", u.firstName(), 50, true)) != null
        || (r = checkText("last_name", u.lastName(), 50, true)) != null
        || (r = checkText("email", u.email(), 100, true)) != null
        || (r = checkText("phone", u.phone(), 20, false)) != null) {
      return r;
    }
    if (u.registrationDate() == null) {
      return "missing registration_date";
    }
    if (u.loyaltyStatus() == null || !LOYALTY.contains(u.loyaltyStatus())) {
      return "unknown loyalty_status";
    }
    return null;
  }

  private static String checkText(String column, String value, int max, boolean required) {
    if (value == null) {
      return required ? "missing " + column : null;
    }
    if (value.codePointCount(0, value.length()) > max) {
      return column + " longer than " + max + " characters";
    }
    if (value.indexOf('\0') >= 0) {
      return column + " contains a NUL character";
    }
    return null;
  }

  private void flush() throws SQLException {
    if (!users.isEmpty()) {
      Set<String> inserted = insertUsers();
      for (User u : users) {
        if (inserted.contains(u.email())) {
          written++;
        } else {
          duplicates++;
          rejected.add(new Rejected(u.raw(), DUPLICATE_EMAIL, u.topic(), u.partition(),
              u.offset()));
        }
      }
      users.clear();
    }
    if (!rejected.isEmpty()) {
      quarantined += insertQuarantine();
      rejected.clear();
    }
  }

  private Set<String> insertUsers() throws SQLException {
    int n = users.size();
    String[] first = new String[n], last = new String[n], email = new String[n],
        phone = new String[n], registered = new String[n], loyalty = new String[n];
    for (int i = 0; i < n; i++) {
      User u = users.get(i);
      first[i] = u.firstName();
      last[i] = u.lastName();
      email[i] = u.email();
      phone[i] = u.phone();
      registered[i] = u.registrationDate();
      loyalty[i] = u.loyaltyStatus();
    }
    Set<String> inserted = new HashSet<>(n * 2);
    try (PreparedStatement ps = conn.prepareStatement(INSERT_USERS)) {
      ps.setArray(1, conn.createArrayOf("text", first));
      ps.setArray(2, conn.createArrayOf("text", last));
      ps.setArray(3, conn.createArrayOf("text", email));
      ps.setArray(4, conn.createArrayOf("text", phone));
      ps.setArray(5, conn.createArrayOf("text", registered));
      ps.setArray(6, conn.createArrayOf("text", loyalty));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          inserted.add(rs.getString(1));
        }
      }
    }
    return inserted;
  }

  private int insertQuarantine() throws SQLException {
    int n = rejected.size();
    String[] raw = new String[n], reason = new String[n], topic = new String[n];
    Integer[] partition = new Integer[n];
    Long[] offset = new Long[n];
    for (int i = 0; i < n; i++) {
      Rejected r = rejected.get(i);
      raw[i] = noNul(r.raw());
      reason[i] = noNul(r.reason());
      topic[i] = noNul(r.topic());
      partition[i] = r.partition();
      offset[i] = r.offset();
    }
    try (PreparedStatement ps = conn.prepareStatement(INSERT_QUARANTINE)) {
      ps.setArray(1, conn.createArrayOf("text", raw));
      ps.setArray(2, conn.createArrayOf("text", reason));
      ps.setArray(3, conn.createArrayOf("text", topic));
      ps.setArray(4, conn.createArrayOf("int4", partition));
      ps.setArray(5, conn.createArrayOf("int8", offset));
      return ps.executeUpdate();
    }
  }

  @Override
  public SinkCommitMessage commit() throws IOException {
    try {
      if (conn != null && !replay) {
        flush();
        try (PreparedStatement ps = conn.prepareStatement(UPDATE_MARKER)) {
          ps.setLong(1, written);
          ps.setLong(2, quarantined);
          ps.setString(3, config.sinkId);
          ps.setLong(4, batchId);
          ps.setInt(5, partitionId);
          ps.executeUpdate();
        }
        conn.commit();
        closeQuietly();
      }
      done = true;
      return new SinkCommitMessage(partitionId, replay, written, quarantined, duplicates,
          skipped);
    } catch (SQLException e) {
      throw failure(e);
    }
  }

  @Override
  public void abort() {
    rollbackAndClose();
  }

  @Override
  public void close() {
    // Spark always calls close; after a failed write without abort, roll back here.
    if (!done) {
      rollbackAndClose();
    }
  }

  private void rollbackAndClose() {
    done = true;
    if (conn != null) {
      try {
        conn.rollback();
      } catch (SQLException ignored) {
        // closing the connection discards the transaction anyway
      }
      closeQuietly();
    }
  }

  private void closeQuietly() {
    try {
      conn.close();
    } catch (SQLException ignored) {
      // nothing left to protect: the transaction is committed or abandoned
    }
  }

  private IOException failure(SQLException e) {
    // getNextException carries the server's reason for a failed batch statement.
    SQLException cause = e.getNextException() != null ? e.getNextException() : e;
    return new IOException("pg-exactly-once sink '" + config.sinkId + "' batch " + batchId
        + " partition " + partitionId + ": " + cause.getMessage(), e);
  }

  private static String text(InternalRow row, int ordinal) {
    return row.isNullAt(ordinal) ? null : row.getUTF8String(ordinal).toString();
  }

  private String timestamp(InternalRow row, int ordinal) {
    if (row.isNullAt(ordinal)) {
      return null;
    }
    long micros = row.getLong(ordinal);
    Instant instant = Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L),
        Math.floorMod(micros, 1_000_000L) * 1_000L);
    // TIMESTAMP_NTZ micros already are a wall clock (encoded as if UTC).
    LocalDateTime wallClock = LocalDateTime.ofInstant(instant,
        config.registrationDateNtz ? ZoneOffset.UTC : zone);
    return PG_TIMESTAMP.format(wallClock);
  }

  // PostgreSQL text cannot hold U+0000; the quarantine must still accept the event.
  private static String noNul(String s) {
    return s == null || s.indexOf('\0') < 0 ? s : s.replace('\0', '\uFFFD');
  }
}
