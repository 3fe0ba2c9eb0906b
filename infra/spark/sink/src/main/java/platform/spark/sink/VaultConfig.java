package platform.spark.sink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The {@code write=vault} mode: change events turned into data vault rows (hubs, links,
 * satellites) in PostgreSQL. The job decides what each event becomes; every input row is
 * one vault row as JSON ({@code __row}) for one target table, so the sink knows nothing
 * of the model and only applies each kind's rule: hubs and links inserted when absent,
 * satellite rows when their hash diff differs from the key's previous row.
 */
final class VaultConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  /** hub | link | sat | truncate (every live key of a satellite marked deleted) | skip. */
  static final String KIND = "__kind";
  static final String TARGET = "__target";
  static final String ROW = "__row";
  static final String REASON = "__reason";
  static final String RAW = "__raw";

  static final StructType INPUT = new StructType()
      .add(KIND, DataTypes.StringType)
      .add(TARGET, DataTypes.StringType)
      .add(ROW, DataTypes.StringType)
      .add(REASON, DataTypes.StringType)
      .add(RAW, DataTypes.BinaryType)
      .add(ReplicaConfig.TOPIC, DataTypes.StringType)
      .add(ReplicaConfig.PARTITION, DataTypes.IntegerType)
      .add(ReplicaConfig.OFFSET, DataTypes.LongType);

  final JdbcTarget target;
  /** Positions of the INPUT columns in the input, in INPUT order. */
  final int[] at;

  private VaultConfig(CaseInsensitiveStringMap options, int[] at) {
    this.target = new JdbcTarget(options, JdbcTarget.Dialect.POSTGRES);
    this.at = at;
  }

  static VaultConfig from(CaseInsensitiveStringMap options, StructType input) {
    List<String> problems = new ArrayList<>();
    int[] at = new int[INPUT.size()];
    for (int i = 0; i < at.length; i++) {
      StructField want = INPUT.fields()[i];
      at[i] = SinkConfig.indexOf(input, want.name());
      if (at[i] < 0) {
        problems.add("missing column " + want.name());
      } else if (!input.fields()[at[i]].dataType().equals(want.dataType())) {
        problems.add("column " + want.name() + " is "
            + input.fields()[at[i]].dataType().simpleString() + ", expected "
            + want.dataType().simpleString());
      }
    }
    VaultConfig config = new VaultConfig(options, at);
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": vault input: "
          + String.join("; ", problems));
    }
    return config;
  }

  @Override
  public String toString() {
    return target.toString();
  }
}
