package platform.spark.sink;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Options and resolved input columns, validated once on the driver and shipped to the
 * executors inside the writer factory. toString never shows the password or the URL
 * (a JDBC URL may carry credentials as parameters).
 */
final class SinkConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  static final String OPT_URL = "url";
  static final String OPT_USER = "user";
  static final String OPT_PASSWORD = "password";
  static final String OPT_SINK_ID = "sinkId";
  static final String OPT_BATCH_SIZE = "batchSize";
  static final String OPT_CREATE_TABLES = "createTables";
  static final String OPT_BATCH_ID = "batchId";

  // Input column positions in `ordinals`, in INPUT_SCHEMA order.
  static final int REASON = 0, FIRST_NAME = 1, LAST_NAME = 2, EMAIL = 3, PHONE = 4,
      REGISTRATION_DATE = 5, LOYALTY_STATUS = 6, RAW = 7, TOPIC = 8, PARTITION = 9, OFFSET = 10;

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
      .add("topic", DataTypes.StringType)
      .add("partition", DataTypes.IntegerType)
      .add("offset", DataTypes.LongType);

  final String url;
  final String user;
  final String password;
  final String sinkId;
  /** Rows per INSERT round trip; bounds executor memory too. */
  final int batchSize;
  final boolean createTables;
  /** Session time zone, to turn TIMESTAMP instants into wall-clock values. */
  final String timeZone;
  /** True when registration_date is TIMESTAMP_NTZ (already a wall clock). */
  final boolean registrationDateNtz;
  final int[] ordinals;

  private SinkConfig(String url, String user, String password, String sinkId, int batchSize,
      boolean createTables, String timeZone, boolean registrationDateNtz, int[] ordinals) {
    this.url = url;
    this.user = user;
    this.password = password;
    this.sinkId = sinkId;
    this.batchSize = batchSize;
    this.createTables = createTables;
    this.timeZone = timeZone;
    this.registrationDateNtz = registrationDateNtz;
    this.ordinals = ordinals;
  }

  static SinkConfig from(CaseInsensitiveStringMap options, StructType input, String timeZone) {
    String url = required(options, OPT_URL);
    if (!url.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException(
          "pg-exactly-once: option 'url' must be a jdbc:postgresql: URL");
    }
    String sinkId = required(options, OPT_SINK_ID);
    int batchSize = options.getInt(OPT_BATCH_SIZE, 5000);
    if (batchSize < 1) {
      throw new IllegalArgumentException("pg-exactly-once: option 'batchSize' must be >= 1");
    }
    boolean createTables = options.getBoolean(OPT_CREATE_TABLES, true);

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
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException("pg-exactly-once: input does not match "
          + INPUT_SCHEMA.simpleString() + ": " + String.join("; ", problems));
    }
    return new SinkConfig(url, options.get(OPT_USER), options.get(OPT_PASSWORD), sinkId,
        batchSize, createTables, timeZone, ntz, ordinals);
  }

  private static String required(CaseInsensitiveStringMap options, String key) {
    String v = options.get(key);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException("pg-exactly-once: option '" + key + "' is required");
    }
    return v;
  }

  // Spark's default resolution is case-insensitive; do the same.
  private static int indexOf(StructType schema, String name) {
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].name().equalsIgnoreCase(name)) {
        return i;
      }
    }
    return -1;
  }

  Connection connect() throws SQLException {
    Properties props = new Properties();
    if (user != null) {
      props.setProperty("user", user);
    }
    if (password != null) {
      props.setProperty("password", password);
    }
    // Makes the sink's sessions recognisable in pg_stat_activity.
    props.setProperty("ApplicationName", "pg-exactly-once:" + sinkId);
    return DriverManager.getConnection(url, props);
  }

  @Override
  public String toString() {
    return "sinkId=" + sinkId + ", user=" + user + ", batchSize=" + batchSize;
  }
}
