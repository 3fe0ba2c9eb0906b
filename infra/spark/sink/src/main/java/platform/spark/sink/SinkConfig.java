package platform.spark.sink;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
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
  private static final org.postgresql.Driver DRIVER = new org.postgresql.Driver();

  static final String OPT_URL = "url";
  static final String OPT_USER = "user";
  static final String OPT_PASSWORD = "password";
  static final String OPT_SINK_ID = "sinkId";
  static final String OPT_LOCK_TIMEOUT_MS = "lockTimeoutMs";
  static final String OPT_SOCKET_TIMEOUT_SECONDS = "socketTimeoutSeconds";
  static final String OPT_CONNECT_TIMEOUT_SECONDS = "connectTimeoutSeconds";
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

  final String url;
  final String user;
  /** Name of the environment variable with the password; null: none is sent. */
  final String passwordEnv;
  final String sinkId;
  final int lockTimeoutMs;
  final int socketTimeoutSeconds;
  final int connectTimeoutSeconds;
  final Mode mode;
  final boolean createTables;
  /** Session time zone, to turn TIMESTAMP instants into wall-clock values. */
  final String timeZone;
  /** True when registration_date is TIMESTAMP_NTZ (already a wall clock). */
  final boolean registrationDateNtz;
  final int[] ordinals;

  private SinkConfig(CaseInsensitiveStringMap options, String timeZone, boolean ntz,
      int[] ordinals) {
    if (options.containsKey(OPT_PASSWORD)) {
      throw new IllegalArgumentException(WHO + ": option '" + OPT_PASSWORD + "' is refused:"
          + " passwords must not travel in Spark plans (they show in the Spark UI); put the"
          + " password in an environment variable of the Spark processes and pass its name"
          + " with option '" + EnvCredentials.OPTION + "'");
    }
    this.url = required(options, OPT_URL);
    if (!url.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException(WHO + ": option 'url' must be a jdbc:postgresql: URL");
    }
    this.user = required(options, OPT_USER);
    this.sinkId = required(options, OPT_SINK_ID);
    String env = options.get(EnvCredentials.OPTION);
    this.passwordEnv = env == null ? null : EnvCredentials.checkName(WHO, env);
    this.lockTimeoutMs = positive(options, OPT_LOCK_TIMEOUT_MS, 30_000);
    this.socketTimeoutSeconds = positive(options, OPT_SOCKET_TIMEOUT_SECONDS, 300);
    this.connectTimeoutSeconds = positive(options, OPT_CONNECT_TIMEOUT_SECONDS, 10);
    this.mode = mode(options.getOrDefault(OPT_MODE, Mode.EXACTLY_ONCE.option));
    this.createTables = bool(options, OPT_CREATE_TABLES, true);
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

  private static String required(CaseInsensitiveStringMap options, String key) {
    String v = options.get(key);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(WHO + ": option '" + key + "' is required");
    }
    return v;
  }

  private static int positive(CaseInsensitiveStringMap options, String key, int fallback) {
    String v = options.get(key);
    if (v == null) {
      return fallback;
    }
    try {
      int n = Integer.parseInt(v.trim());
      if (n > 0) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(WHO + ": option '" + key + "' must be a positive"
        + " integer, got '" + v + "'");
  }

  private static boolean bool(CaseInsensitiveStringMap options, String key, boolean fallback) {
    String v = options.getOrDefault(key, String.valueOf(fallback)).trim();
    if (!v.equalsIgnoreCase("true") && !v.equalsIgnoreCase("false")) {
      throw new IllegalArgumentException(WHO + ": option '" + key + "' must be true or false,"
          + " got '" + v + "'");
    }
    return Boolean.parseBoolean(v);
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
  private static int indexOf(StructType schema, String name) {
    StructField[] fields = schema.fields();
    for (int i = 0; i < fields.length; i++) {
      if (fields[i].name().equalsIgnoreCase(name)) {
        return i;
      }
    }
    return -1;
  }

  /**
   * A connection whose waits are all bounded: connecting, every socket read (a stuck
   * server or network), and every lock (lock_timeout), so that a stuck task or commit
   * fails and Spark retries instead of holding the batch forever.
   */
  Connection connect() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", user);
    if (passwordEnv != null) {
      props.setProperty("password", EnvCredentials.password(WHO, passwordEnv));
    }
    // Makes the sink's sessions recognisable in pg_stat_activity.
    props.setProperty("ApplicationName", WHO + ":" + sinkId);
    props.setProperty("connectTimeout", Integer.toString(connectTimeoutSeconds));
    props.setProperty("socketTimeout", Integer.toString(socketTimeoutSeconds));
    props.setProperty("tcpKeepAlive", "true");
    // The driver instance, not DriverManager: Spark may load this jar in a class loader
    // that DriverManager does not search.
    Connection conn = DRIVER.connect(url, props);
    try (Statement st = conn.createStatement()) {
      st.execute("SET lock_timeout = " + lockTimeoutMs);
    } catch (SQLException e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  @Override
  public String toString() {
    return "sinkId=" + sinkId + ", user=" + user + ", passwordEnv=" + passwordEnv
        + ", mode=" + mode.option + ", lockTimeoutMs=" + lockTimeoutMs;
  }
}
