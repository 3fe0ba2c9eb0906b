package platform.spark.sink;

import java.io.IOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.time.ZoneId;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.types.UTF8String;
import org.postgresql.PGConnection;

/**
 * One task attempt: streams its partition's rows with COPY into its own UNLOGGED staging
 * table, created in the same transaction, and commits. Nothing reaches users or the
 * quarantine here; the driver moves all staged rows of the batch in one transaction
 * (BatchCommit). An attempt that fails or is aborted rolls back, and its table with it.
 */
final class StagingWriter implements DataWriter<InternalRow> {
  private static final Set<UTF8String> LOYALTY = Set.of(UTF8String.fromString("Gold"),
      UTF8String.fromString("Silver"), UTF8String.fromString("Bronze"));
  private static final UTF8String SPACE = UTF8String.fromString(" ");
  // PostgreSQL's TIMESTAMP range, in microseconds since its epoch (2000-01-01):
  // 4714-11-24 BC inclusive to 294277-01-01 exclusive.
  private static final long PG_MIN_TIMESTAMP = -211_813_488_000_000_000L;
  private static final long PG_END_TIMESTAMP = 9_223_371_331_200_000_000L;

  private final SinkConfig config;
  private final long epoch;
  private final int partitionId;
  private final String table;
  private final ZoneId zone;

  private Connection conn; // opened on the first row: empty partitions create nothing
  private BinaryCopy copy;
  private boolean done;
  private final Map<StagedTable.KafkaPartition, Long> nextOffsets = new HashMap<>();

  StagingWriter(SinkConfig config, long epoch, int partitionId, long taskId) {
    this.config = config;
    this.epoch = epoch;
    this.partitionId = partitionId;
    this.table = SinkTables.stageName(config.sinkId, partitionId, taskId);
    this.zone = ZoneId.of(config.timeZone);
  }

  @Override
  public void write(InternalRow row) throws IOException {
    try {
      if (copy == null) {
        open();
      }
      stage(row);
    } catch (SQLException e) {
      throw failure(e);
    }
  }

  private void open() throws SQLException {
    conn = config.connect();
    conn.setAutoCommit(false);
    try (Statement st = conn.createStatement()) {
      st.execute(SinkTables.createStage(table));
    }
    copy = new BinaryCopy(
        conn.unwrap(PGConnection.class).getCopyAPI().copyIn(SinkTables.copyInto(table)));
  }

  private void stage(InternalRow row) throws SQLException, IOException {
    int[] at = config.ordinals;
    if (row.isNullAt(at[SinkConfig.TOPIC]) || row.isNullAt(at[SinkConfig.PARTITION])
        || row.isNullAt(at[SinkConfig.OFFSET])) {
      throw new IOException(SinkConfig.WHO + ": a row has a NULL topic, partition or offset;"
          + " the sink needs the Kafka coordinates of every row (they key exactly-once)");
    }
    UTF8String raw = text(row, at[SinkConfig.RAW]);
    byte[] rawBytes = row.isNullAt(at[SinkConfig.RAW_BYTES]) ? null
        : row.getBinary(at[SinkConfig.RAW_BYTES]);
    if (raw != null && !storable(raw)) {
      // TEXT cannot hold it; BYTEA keeps the payload exactly.
      rawBytes = rawBytes != null ? rawBytes : raw.getBytes();
      raw = null;
    }
    UTF8String reason = text(row, at[SinkConfig.REASON]);
    Long registered = null;
    if (reason == null) {
      registered = pgTimestamp(row, at[SinkConfig.REGISTRATION_DATE]);
      String problem = violation(row, registered);
      reason = problem == null ? null : UTF8String.fromString(problem);
    } else if (!storable(reason)) {
      reason = UTF8String.fromString(reason.makeValid().toString().replace('\0', '\uFFFD'));
    }

    copy.startRow(SinkTables.STAGE_COLUMN_COUNT);
    copy.text(reason);
    if (reason == null) {
      copy.text(text(row, at[SinkConfig.FIRST_NAME]));
      copy.text(text(row, at[SinkConfig.LAST_NAME]));
      copy.text(text(row, at[SinkConfig.EMAIL]));
      copy.text(text(row, at[SinkConfig.PHONE]));
      copy.int8(registered);
      copy.text(text(row, at[SinkConfig.LOYALTY_STATUS]));
    } else {
      for (int i = 0; i < 6; i++) {
        copy.nul(); // only the raw payload of a quarantined row is kept
      }
    }
    copy.text(raw);
    copy.bytes(rawBytes);
    UTF8String topic = row.getUTF8String(at[SinkConfig.TOPIC]);
    int partition = row.getInt(at[SinkConfig.PARTITION]);
    long offset = row.getLong(at[SinkConfig.OFFSET]);
    copy.text(topic);
    copy.int4(partition);
    copy.int8(offset);
    nextOffsets.merge(new StagedTable.KafkaPartition(topic.toString(), partition), offset + 1,
        Math::max);
  }

  /**
   * The users table's own constraints, checked here so that a row the job's validation
   * let through is quarantined instead of failing the whole batch (and the stream).
   */
  private String violation(InternalRow row, Long registered) {
    int[] at = config.ordinals;
    UTF8String email = text(row, at[SinkConfig.EMAIL]);
    String r;
    if ((r = checkText("first_name", text(row, at[SinkConfig.FIRST_NAME]), 50, true)) != null
        || (r = checkText("last_name", text(row, at[SinkConfig.LAST_NAME]), 50, true)) != null
        || (r = checkText("email", email, 100, true)) != null
        || (r = checkText("phone", text(row, at[SinkConfig.PHONE]), 20, false)) != null) {
      return r;
    }
    // users stores lower(email) and checks email = lower(btrim(email)).
    if (email.startsWith(SPACE) || email.endsWith(SPACE)) {
      return "email has leading or trailing spaces";
    }
    if (registered == null) {
      return row.isNullAt(at[SinkConfig.REGISTRATION_DATE]) ? "missing registration_date"
          : "registration_date outside PostgreSQL's range";
    }
    UTF8String loyalty = text(row, at[SinkConfig.LOYALTY_STATUS]);
    if (loyalty == null || !LOYALTY.contains(loyalty)) {
      return "unknown loyalty_status";
    }
    return null;
  }

  private static String checkText(String column, UTF8String value, int max, boolean required) {
    if (value == null) {
      return required ? "missing " + column : null;
    }
    if (!value.isValid()) {
      return column + " is not valid UTF-8";
    }
    // VARCHAR(n) counts characters, i.e. code points; never more than the bytes.
    if (value.numBytes() > max && value.numChars() > max) {
      return column + " longer than " + max + " characters";
    }
    if (hasNul(value)) {
      return column + " contains a NUL character";
    }
    return null;
  }

  /** Valid UTF-8 without NUL: what a PostgreSQL TEXT value can hold. */
  private static boolean storable(UTF8String s) {
    return s.isValid() && !hasNul(s);
  }

  // UTF8String.contains calls a comparison at every byte position; this is one loop.
  private static boolean hasNul(UTF8String s) {
    Object base = s.getBaseObject();
    long at = s.getBaseOffset();
    for (long end = at + s.numBytes(); at < end; at++) {
      if (Platform.getByte(base, at) == 0) {
        return true;
      }
    }
    return false;
  }

  /**
   * registration_date as PostgreSQL's binary TIMESTAMP: the wall clock in the session
   * time zone (TIMESTAMP_NTZ already is one), or null when missing or out of range.
   */
  private Long pgTimestamp(InternalRow row, int ordinal) {
    if (row.isNullAt(ordinal)) {
      return null;
    }
    long micros = row.getLong(ordinal);
    try {
      if (!config.registrationDateNtz) {
        Instant at = Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L));
        micros = Math.addExact(micros,
            zone.getRules().getOffset(at).getTotalSeconds() * 1_000_000L);
      }
      long pg = Math.subtractExact(micros, BinaryCopy.PG_EPOCH_MICROS);
      return pg >= PG_MIN_TIMESTAMP && pg < PG_END_TIMESTAMP ? pg : null;
    } catch (ArithmeticException e) {
      return null; // beyond a long: far outside PostgreSQL's range too
    }
  }

  private static UTF8String text(InternalRow row, int ordinal) {
    return row.isNullAt(ordinal) ? null : row.getUTF8String(ordinal);
  }

  @Override
  public StagedTable commit() throws IOException {
    try {
      long rows = 0;
      if (copy != null) {
        rows = copy.finish();
        conn.commit();
        conn.close();
      }
      done = true;
      return new StagedTable(rows == 0 ? null : table, rows, nextOffsets);
    } catch (SQLException e) {
      throw failure(e);
    }
  }

  @Override
  public void abort() {
    discard();
  }

  @Override
  public void close() {
    // Spark always calls close; after a failed write without abort, discard here.
    if (!done) {
      discard();
    }
  }

  // Closing the connection ends the transaction without a commit: the staging table and
  // its rows disappear with it.
  private void discard() {
    done = true;
    if (conn == null) {
      return;
    }
    try {
      if (copy != null) {
        copy.cancel();
      }
    } catch (SQLException ignored) {
      // the connection is closed next, which abandons the COPY anyway
    }
    try {
      conn.close();
    } catch (SQLException ignored) {
      // nothing to protect: the transaction was never committed
    }
  }

  private IOException failure(SQLException e) {
    return new IOException(SinkConfig.WHO + " sink '" + config.sinkId + "' epoch " + epoch
        + " partition " + partitionId + ": cannot stage rows in " + table + ": "
        + e.getMessage(), e);
  }
}
