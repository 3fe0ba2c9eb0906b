package platform.spark.sink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The {@code write=replica} mode: change events applied to one MySQL table by its
 * primary key. Input: the control columns below plus one column per replica column (by
 * name; the replica's own columns and key are read from MySQL when the write starts).
 */
final class ReplicaConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  static final String OPT_TABLE = "table";
  static final String OPT_GENERATION = "generation";
  static final String OPT_LOCK_NAME = "lockName";
  static final String OPT_LOCK_WAIT_SECONDS = "lockWaitSeconds";

  /** upsert | delete | truncate | tombstone, or NULL with a reason (quarantine). */
  static final String OP = "__op";
  static final String REASON = "__reason";
  /** The change event as Kafka holds it, kept in the quarantine. */
  static final String RAW = "__raw";
  /** Fields of the event the replica has no column for (comma-separated), or NULL. */
  static final String UNKNOWN_COLUMNS = "__unknown_columns";
  static final String TOPIC = "topic";
  static final String PARTITION = "partition";
  static final String OFFSET = "offset";

  private static final StructType CONTROL = new StructType()
      .add(OP, DataTypes.StringType)
      .add(REASON, DataTypes.StringType)
      .add(RAW, DataTypes.BinaryType)
      .add(UNKNOWN_COLUMNS, DataTypes.StringType)
      .add(TOPIC, DataTypes.StringType)
      .add(PARTITION, DataTypes.IntegerType)
      .add(OFFSET, DataTypes.LongType);

  final JdbcTarget target;
  final String table;
  /** The replica's progress generation the query started from (see ReplicaCommit). */
  final long generation;
  /** MySQL named lock held around each commit (the one jobs replicate holds), or null. */
  final String lockName;
  final int lockWaitSeconds;
  final String timeZone;
  /** Positions of the CONTROL columns in the input, in CONTROL order. */
  final int[] control;
  /** The data columns: names as MySQL has them, input positions and types. */
  final String[] columns;
  final int[] columnAt;
  final DataType[] columnTypes;

  private ReplicaConfig(CaseInsensitiveStringMap options, String timeZone, int[] control,
      String[] columns, int[] columnAt, DataType[] columnTypes) {
    this.target = new JdbcTarget(options, JdbcTarget.Dialect.MYSQL);
    this.table = Options.required(options, OPT_TABLE);
    if (!table.matches("[A-Za-z_][A-Za-z0-9_]{0,63}")) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": option 'table' must be a plain"
          + " MySQL table name, got '" + table + "'");
    }
    this.generation = Options.integer(options, OPT_GENERATION, 0);
    String lock = options.get(OPT_LOCK_NAME);
    this.lockName = lock == null || lock.isBlank() ? null : lock;
    this.lockWaitSeconds = Options.positive(options, OPT_LOCK_WAIT_SECONDS, 300);
    this.timeZone = timeZone;
    this.control = control;
    this.columns = columns;
    this.columnAt = columnAt;
    this.columnTypes = columnTypes;
  }

  static ReplicaConfig from(CaseInsensitiveStringMap options, StructType input, String zone) {
    List<String> problems = new ArrayList<>();
    int[] control = new int[CONTROL.size()];
    for (int i = 0; i < control.length; i++) {
      StructField want = CONTROL.fields()[i];
      int at = SinkConfig.indexOf(input, want.name());
      control[i] = at;
      if (at < 0) {
        problems.add("missing column " + want.name());
      } else if (!input.fields()[at].dataType().equals(want.dataType())) {
        problems.add("column " + want.name() + " is " + input.fields()[at].dataType()
            .simpleString() + ", expected " + want.dataType().simpleString());
      }
    }
    List<String> names = new ArrayList<>();
    List<Integer> at = new ArrayList<>();
    List<DataType> types = new ArrayList<>();
    StructField[] fields = input.fields();
    for (int i = 0; i < fields.length; i++) {
      String name = fields[i].name();
      if (SinkConfig.indexOf(CONTROL, name) >= 0) {
        continue;
      }
      if (name.startsWith("__")) {
        problems.add("unknown control column " + name);
        continue;
      }
      names.add(name.toLowerCase(Locale.ROOT));
      at.add(i);
      types.add(fields[i].dataType());
    }
    if (names.isEmpty()) {
      problems.add("no data columns");
    }
    ReplicaConfig config = new ReplicaConfig(options, zone, control,
        names.toArray(String[]::new), at.stream().mapToInt(Integer::intValue).toArray(),
        types.toArray(DataType[]::new));
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": replica input for table "
          + config.table + ": " + String.join("; ", problems));
    }
    return config;
  }

  int opAt() {
    return control[0];
  }

  int reasonAt() {
    return control[1];
  }

  int rawAt() {
    return control[2];
  }

  int unknownColumnsAt() {
    return control[3];
  }

  int topicAt() {
    return control[4];
  }

  int partitionAt() {
    return control[5];
  }

  int offsetAt() {
    return control[6];
  }

  @Override
  public String toString() {
    return target + ", table=" + table + ", generation=" + generation;
  }
}
