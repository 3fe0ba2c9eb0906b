package platform.spark.sink;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.UUID;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.connector.write.streaming.StreamingDataWriterFactory;
import org.apache.spark.sql.connector.write.streaming.StreamingWrite;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Driver side of a replica write: checks the MySQL table when the query starts, then
 * applies each batch the tasks collected in one transaction (ReplicaCommit).
 */
final class ReplicaWrite implements Write, BatchWrite, StreamingWrite {
  private static final Logger LOG = LoggerFactory.getLogger(ReplicaWrite.class);
  static final List<String> SINK_TABLES =
      List.of("cdc_sink_offsets", "cdc_sink_commits", "cdc_quarantine");

  private final ReplicaConfig config;
  private final long batchEpoch;
  private List<String> key;

  ReplicaWrite(ReplicaConfig config, String queryId) {
    this.config = config;
    this.batchEpoch = -(UUID.fromString(queryId).getMostSignificantBits() & Long.MAX_VALUE) - 1;
  }

  @Override
  public String description() {
    return SinkConfig.WHO + "[replica " + config.table + "]";
  }

  @Override
  public BatchWrite toBatch() {
    prepare();
    return this;
  }

  @Override
  public StreamingWrite toStreaming() {
    prepare();
    return this;
  }

  /** The replica's primary key, and a clear error for what cannot work. */
  private void prepare() {
    try (Connection conn = config.target.connect()) {
      List<String> present = new ArrayList<>();
      try (PreparedStatement ps = conn.prepareStatement("SELECT TABLE_NAME FROM"
          + " information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")) {
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            present.add(rs.getString(1).toLowerCase(Locale.ROOT));
          }
        }
      }
      for (String t : SINK_TABLES) {
        if (!present.contains(t)) {
          throw new IllegalStateException(SinkConfig.WHO + ": MySQL table " + t + " is missing:"
              + " run the MySQL init (infra/db/mysql/schema.sql)");
        }
      }
      if (!present.contains(config.table.toLowerCase(Locale.ROOT))) {
        throw new IllegalStateException(SinkConfig.WHO + ": MySQL table " + config.table
            + " does not exist: create the replica first (make up runs the MySQL init)");
      }
      List<String> columns = new ArrayList<>();
      List<String> primary = new ArrayList<>();
      try (PreparedStatement ps = conn.prepareStatement("SELECT c.COLUMN_NAME,"
          + " k.ORDINAL_POSITION FROM information_schema.COLUMNS c"
          + " LEFT JOIN information_schema.KEY_COLUMN_USAGE k ON k.TABLE_SCHEMA = c.TABLE_SCHEMA"
          + " AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME"
          + " AND k.CONSTRAINT_NAME = 'PRIMARY'"
          + " WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = ?"
          + " ORDER BY k.ORDINAL_POSITION, c.ORDINAL_POSITION")) {
        ps.setString(1, config.table);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            String name = rs.getString(1).toLowerCase(Locale.ROOT);
            columns.add(name);
            if (rs.getObject(2) != null) {
              primary.add(name);
            }
          }
        }
      }
      if (primary.isEmpty()) {
        throw new IllegalStateException(SinkConfig.WHO + ": MySQL table " + config.table
            + " has no primary key; change events are applied by key");
      }
      List<String> input = Arrays.asList(config.columns);
      List<String> unknown = input.stream().filter(c -> !columns.contains(c)).toList();
      List<String> keyless = primary.stream().filter(c -> !input.contains(c)).toList();
      if (!unknown.isEmpty() || !keyless.isEmpty()) {
        throw new IllegalStateException(SinkConfig.WHO + ": input for MySQL table "
            + config.table + (unknown.isEmpty() ? "" : " has columns the table lacks " + unknown)
            + (keyless.isEmpty() ? "" : " lacks key columns " + keyless));
      }
      this.key = List.copyOf(primary);
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + ": cannot prepare MySQL table "
          + config.table + " (" + config + "): " + e.getMessage(), e);
    }
    LOG.info("{} replica sink '{}' ready: table {} keyed on {}", SinkConfig.WHO,
        config.target.sinkId, config.table, key);
  }

  @Override
  public boolean useCommitCoordinator() {
    return true;
  }

  private Factory factory() {
    return new Factory(config);
  }

  @Override
  public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
    return factory();
  }

  @Override
  public StreamingDataWriterFactory createStreamingWriterFactory(PhysicalWriteInfo info) {
    return factory();
  }

  @Override
  public void commit(WriterCommitMessage[] messages) {
    commit(batchEpoch, messages);
  }

  @Override
  public void commit(long epochId, WriterCommitMessage[] messages) {
    List<Change> changes = new ArrayList<>();
    for (WriterCommitMessage m : messages) {
      if (m instanceof Change.Batch b) {
        changes.addAll(b.changes());
      }
    }
    long start = System.nanoTime();
    ReplicaCommit.Counts c;
    try {
      c = ReplicaCommit.run(config, key, epochId, changes);
    } catch (ReplicaCommit.UnknownColumns | ReplicaCommit.GenerationChanged e) {
      throw new IllegalStateException(SinkConfig.WHO + ": " + e.getMessage(), e);
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + " replica sink '" + config.target.sinkId
          + "' table " + config.table + " epoch " + epochId + ": commit failed: "
          + e.getMessage() + " (replaying the batch is safe: what was committed is skipped)", e);
    }
    LOG.info("{} replica sink '{}' epoch {}: {} changes, {} rows upserted, {} deleted, {}"
            + " quarantined, {} skipped in {} ms", SinkConfig.WHO, config.target.sinkId,
        epochId, c.changes(), c.upserted(), c.deleted(), c.quarantined(), c.skipped(),
        (System.nanoTime() - start) / 1_000_000);
  }

  @Override
  public void abort(WriterCommitMessage[] messages) {
    abort(batchEpoch, messages);
  }

  @Override
  public void abort(long epochId, WriterCommitMessage[] messages) {
    LOG.warn("{} replica sink '{}' epoch {} aborted; nothing written", SinkConfig.WHO,
        config.target.sinkId, epochId);
  }

  /** Serialized to the executors; one collecting writer per task attempt. */
  private record Factory(ReplicaConfig config)
      implements DataWriterFactory, StreamingDataWriterFactory {
    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
      return new ChangeWriter(config);
    }

    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId, long epochId) {
      return new ChangeWriter(config);
    }
  }
}
