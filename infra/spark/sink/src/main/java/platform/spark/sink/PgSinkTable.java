package platform.spark.sink;

import java.util.EnumSet;
import java.util.Set;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.types.StructType;

/**
 * The write-only table behind the format: by option {@code write}, {@code users} (the
 * default: users + users_quarantine in PostgreSQL), {@code replica} (change events
 * applied to a MySQL table) or {@code vault} (data vault rows in PostgreSQL).
 */
final class PgSinkTable implements SupportsWrite {
  static final String OPT_WRITE = "write";

  @Override
  public String name() {
    return PgExactlyOnceProvider.SHORT_NAME;
  }

  @Override
  public StructType schema() {
    return SinkConfig.INPUT_SCHEMA;
  }

  @Override
  public Set<TableCapability> capabilities() {
    // ACCEPT_ANY_SCHEMA: batch appends would otherwise be resolved against schema()
    // with casts and exact column sets; streaming writes are never checked. Accepting
    // anything and validating by name ourselves gives both paths the same rules
    // (extra columns are ignored, missing or mistyped ones fail at query start).
    return EnumSet.of(
        TableCapability.BATCH_WRITE,
        TableCapability.STREAMING_WRITE,
        TableCapability.ACCEPT_ANY_SCHEMA);
  }

  @Override
  public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
    // Runs on the driver, where the session's time zone is known: Spark TIMESTAMPs are
    // instants, users.registration_date is a wall-clock TIMESTAMP, and the wall clock
    // must be the one the job's SQL parsed the value in.
    String zone = SparkSession.active().conf().get("spark.sql.session.timeZone");
    String write = info.options().getOrDefault(OPT_WRITE, "users");
    if (write.equals("replica")) {
      ReplicaConfig replica = ReplicaConfig.from(info.options(), info.schema(), zone);
      return new WriteBuilder() {
        @Override
        public Write build() {
          return new ReplicaWrite(replica, info.queryId());
        }
      };
    }
    if (write.equals("vault")) {
      VaultConfig vault = VaultConfig.from(info.options(), info.schema());
      return new WriteBuilder() {
        @Override
        public Write build() {
          return new VaultWrite(vault, info.queryId());
        }
      };
    }
    if (!write.equals("users")) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": option '" + OPT_WRITE
          + "' must be users (the default), replica or vault, got '" + write + "'");
    }
    SinkConfig config = SinkConfig.from(info.options(), info.schema(), zone);
    return new WriteBuilder() {
      @Override
      public Write build() {
        return new PgSinkWrite(config, info.queryId(), info.options());
      }
    };
  }
}
