package platform.spark.sink;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Options and resolved input columns, validated once on the driver and shipped to the
 * executors inside the writer factory. It holds no password, only the name of the
 * variable holding it; toString does not show the URL either (a JDBC URL may carry
 * credentials as parameters).
 */
final class SinkConfig implements Serializable {
  private static final long serialVersionUID = 2L;

  static final String WHO = PgExactlyOnceProvider.SHORT_NAME;

  static final String OPT_MODE = "mode";
  static final String OPT_CREATE_TABLES = "createTables";
  static final String OPT_BATCH_ID = "batchId";

  /** What the driver does with the staged rows. */
  enum Mode {
    /** Skip what the progress table says is committed, classify duplicates. */
    EXACTLY_ONCE("exactly-once"),
    /** Benchmark baseline only: plain INSERTs of the same staged rows, no bookkeeping. */
    APPEND("append");

    final String option;

    Mode(String option) {
      this.option = option;
    }
  }

  // Input column positions in `ordinals`, in INPUT_SCHEMA order.
  static final int REASON = 0, FIRST_NAME = 1, LAST_NAME = 2, EMAIL = 3, PHONE = 4,
      REGISTRATION_DATE = 5, LOYALTY_STATUS = 6, RAW = 7, RAW_BYTES = 8, TOPIC = 9,
      PARTITION = 10, OFFSET = 11;

  /** What the sink reads, by name; reason IS NULL marks a valid event. */
  static final StructType INPUT_SCHEMA = new StructType()
      .add("reason", DataTypes.StringType)
      .add("first_name", DataTypes.StringType)
      .add("last_name", DataTypes.StringType)
      .add("email", DataTypes.StringType)
      .add("phone", DataTypes.StringType)
      .add("registration_date", DataTypes.TimestampType)
      .add("loyalty_status", DataTypes.StringType)
      .add("raw", DataTypes.StringType)
      .add("raw_bytes", DataTypes.BinaryType)
      .add("topic", DataTypes.StringType)
      .add("partition", DataTypes.IntegerType)
      .add("offset", DataTypes.LongType);

  final JdbcTarget target;
  final String url;
  final String user;
  final String sinkId;
  final int lockTimeoutMs;
  final Mode mode;
  final boolean createTables;
  /** Session time zone, to turn TIMESTAMP instants into wall-clock values. */
  final String timeZone;
  /** True when registration_date is TIMESTAMP_NTZ (already a wall clock). */
  final boolean registrationDateNtz;
  final int[] ordinals;

  private SinkConfig(CaseInsensitiveStringMap options, String timeZone, boolean ntz,
      int[] ordinals) {
    this.target = new JdbcTarget(options, JdbcTarget.Dialect.POSTGRES);
    this.url = target.url;
    this.user = target.user;
    this.sinkId = target.sinkId;
    this.lockTimeoutMs = target.lockTimeoutMs;
    this.mode = mode(options.getOrDefault(OPT_MODE, Mode.EXACTLY_ONCE.option));
    this.createTables = Options.bool(options, OPT_CREATE_TABLES, true);
    this.timeZone = timeZone;
    this.registrationDateNtz = ntz;
    this.ordinals = ordinals;
  }

  static SinkConfig from(CaseInsensitiveStringMap options, StructType input, String timeZone) {
    int[] ordinals = new int[INPUT_SCHEMA.size()];
    List<String> problems = new ArrayList<>();
    boolean ntz = false;
    for (int i = 0; i < ordinals.length; i++) {
      StructField want = INPUT_SCHEMA.fields()[i];
      int at = indexOf(input, want.name());
      ordinals[i] = at;
      if (at < 0) {
        problems.add("missing column " + want.name());
        continue;
      }
      DataType got = input.fields()[at].dataType();
      if (i == REGISTRATION_DATE && got.equals(DataTypes.TimestampNTZType)) {
        ntz = true;
      } else if (!got.equals(want.dataType())) {
        problems.add("column " + want.name() + " is " + got.simpleString()
            + ", expected " + want.dataType().simpleString());
      }
    }
    SinkConfig config = new SinkConfig(options, timeZone, ntz, ordinals);
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(WHO + ": input does not match "
          + INPUT_SCHEMA.simpleString() + ": " + String.join("; ", problems));
    }
    return config;
  }

  private static Mode mode(String v) {
    for (Mode m : Mode.values()) {
      if (m.option.equals(v.trim().toLowerCase(Locale.ROOT))) {
        return m;
      }
    }
    throw new IllegalArgumentException(WHO + ": option '" + OPT_MODE + "' must be "
        + Mode.EXACTLY_ONCE.option + " (the default) or " + Mode.APPEND.option + ", got '" + v
        + "'");
  }

  // Spark's default resolution is case-insensitive; do the same.
  static int indexOf(StructType schema, String name) {
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].name().equalsIgnoreCase(name)) {
        return i;
      }
    }
    return -1;
  }

  Connection connect() throws SQLException {
    return target.connect();
  }

  @Override
  public String toString() {
    return "sinkId=" + sinkId + ", user=" + user + ", passwordEnv=" + target.passwordEnv
        + ", mode=" + mode.option + ", lockTimeoutMs=" + lockTimeoutMs;
  }
}
