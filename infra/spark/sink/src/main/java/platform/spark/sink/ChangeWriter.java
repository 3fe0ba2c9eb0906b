package platform.spark.sink;

import java.io.IOException;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;

/**
 * One task attempt of a replica write: turns its rows into {@link Change}s for the
 * driver, which applies the whole batch in one MySQL transaction (ReplicaCommit). A
 * task writes nothing itself, so a failed or repeated attempt leaves no trace.
 */
final class ChangeWriter implements DataWriter<InternalRow> {
  private final ReplicaConfig config;
  private final ZoneId zone;
  private final List<Change> changes = new ArrayList<>();

  ChangeWriter(ReplicaConfig config) {
    this.config = config;
    this.zone = ZoneId.of(config.timeZone);
  }

  @Override
  public void write(InternalRow row) throws IOException {
    if (row.isNullAt(config.topicAt()) || row.isNullAt(config.partitionAt())
        || row.isNullAt(config.offsetAt())) {
      throw new IOException(SinkConfig.WHO + ": a change of table " + config.table + " has a"
          + " NULL topic, partition or offset; exactly-once is keyed on them");
    }
    String topic = row.getUTF8String(config.topicAt()).toString();
    int partition = row.getInt(config.partitionAt());
    long offset = row.getLong(config.offsetAt());
    String op = row.isNullAt(config.opAt()) ? null : row.getUTF8String(config.opAt()).toString();
    String reason = row.isNullAt(config.reasonAt()) ? null
        : row.getUTF8String(config.reasonAt()).toString();
    byte[] raw = row.isNullAt(config.rawAt()) ? null : row.getBinary(config.rawAt());
    if (!row.isNullAt(config.unknownColumnsAt())) {
      changes.add(new Change(topic, partition, offset, Change.Kind.UNKNOWN_COLUMNS, null,
          row.getUTF8String(config.unknownColumnsAt()).toString(), null));
      return;
    }
    Change.Kind kind = reason != null ? Change.Kind.QUARANTINE : op == null ? null
        : switch (op) {
          case "upsert" -> Change.Kind.UPSERT;
          case "delete" -> Change.Kind.DELETE;
          case "truncate" -> Change.Kind.TRUNCATE;
          case "tombstone" -> Change.Kind.TOMBSTONE;
          default -> null;
        };
    if (kind == null) {
      kind = Change.Kind.QUARANTINE;
      reason = "unknown operation " + op;
    }
    if (kind == Change.Kind.QUARANTINE) {
      changes.add(new Change(topic, partition, offset, kind, null, reason, raw));
      return;
    }
    if (kind == Change.Kind.TOMBSTONE || kind == Change.Kind.TRUNCATE) {
      changes.add(new Change(topic, partition, offset, kind, null, null, null));
      return;
    }
    Object[] values = new Object[config.columns.length];
    for (int i = 0; i < values.length; i++) {
      values[i] = value(row, config.columnAt[i], config.columnTypes[i]);
    }
    changes.add(new Change(topic, partition, offset, kind, values, null, null));
  }

  /** A Spark value as the JDBC object MySQL stores it from. */
  private Object value(InternalRow row, int at, DataType type) throws IOException {
    if (row.isNullAt(at)) {
      return null;
    }
    if (type instanceof StringType) {
      return row.getUTF8String(at).toString();
    } else if (type instanceof LongType) {
      return row.getLong(at);
    } else if (type instanceof IntegerType) {
      return row.getInt(at);
    } else if (type instanceof ShortType) {
      return row.getShort(at);
    } else if (type instanceof BooleanType) {
      return row.getBoolean(at);
    } else if (type instanceof DoubleType) {
      return row.getDouble(at);
    } else if (type instanceof FloatType) {
      return row.getFloat(at);
    } else if (type instanceof DecimalType d) {
      return row.getDecimal(at, d.precision(), d.scale()).toJavaBigDecimal();
    } else if (type instanceof DateType) {
      return LocalDate.ofEpochDay(row.getInt(at));
    } else if (type instanceof TimestampNTZType) {
      return micros(row.getLong(at), ZoneOffset.UTC);
    } else if (type instanceof TimestampType) {
      // An instant; the replica's DATETIME holds the wall clock of the session zone.
      return micros(row.getLong(at), zone);
    } else if (type instanceof BinaryType) {
      return row.getBinary(at);
    }
    throw new IOException(SinkConfig.WHO + ": table " + config.table + ": column type "
        + type.simpleString() + " is not supported");
  }

  private static LocalDateTime micros(long micros, ZoneId zone) {
    Instant at = Instant.ofEpochSecond(Math.floorDiv(micros, 1_000_000L),
        Math.floorMod(micros, 1_000_000L) * 1000L);
    return LocalDateTime.ofInstant(at, zone);
  }

  @Override
  public Change.Batch commit() {
    return new Change.Batch(List.copyOf(changes));
  }

  @Override
  public void abort() {
    changes.clear();
  }

  @Override
  public void close() {
    // nothing held: the rows only travel to the driver
  }
}
