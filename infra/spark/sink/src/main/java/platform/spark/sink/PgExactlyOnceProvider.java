package platform.spark.sink;

import java.util.Map;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.sources.DataSourceRegister;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * Entry point of the {@code pg-exactly-once} format. Spark has no JDBC streaming sink and
 * a Spark Connect client cannot ship a foreachBatch closure, so this sink lives on the
 * cluster classpath and is addressed by its short name:
 *
 * <pre>
 * df.writeStream.format("pg-exactly-once")
 *   .option("url", "jdbc:postgresql://host:5432/db?currentSchema=s")
 *   .option("user", ...).option("passwordEnv", "POSTGRES_PASSWORD")
 *   .option("sinkId", "users-stream")
 *   .option("checkpointLocation", ...).start()
 * </pre>
 */
public final class PgExactlyOnceProvider implements TableProvider, DataSourceRegister {

  public static final String SHORT_NAME = "pg-exactly-once";

  @Override
  public String shortName() {
    return SHORT_NAME;
  }

  @Override
  public StructType inferSchema(CaseInsensitiveStringMap options) {
    // Only informative: the table accepts any schema and resolves columns by name
    // when the write starts (SinkConfig.from).
    return SinkConfig.INPUT_SCHEMA;
  }

  @Override
  public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
    return new PgSinkTable();
  }
}
