package platform.spark.sink;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
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

/** Driver side of a vault write: each batch the tasks collected, in one transaction. */
final class VaultWrite implements Write, BatchWrite, StreamingWrite {
  private static final Logger LOG = LoggerFactory.getLogger(VaultWrite.class);

  private final VaultConfig config;
  private final long batchEpoch;

  VaultWrite(VaultConfig config, String queryId) {
    this.config = config;
    this.batchEpoch = -(UUID.fromString(queryId).getMostSignificantBits() & Long.MAX_VALUE) - 1;
  }

  @Override
  public String description() {
    return SinkConfig.WHO + "[vault " + config.target.sinkId + "]";
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

  /** The vault's bookkeeping tables must exist (jobs dwh creates the vault). */
  private void prepare() {
    try (Connection conn = config.target.connect();
        PreparedStatement ps = conn.prepareStatement("SELECT t FROM unnest(?::text[]) t"
            + " WHERE to_regclass(t) IS NULL")) {
      ps.setArray(1, conn.createArrayOf("text", VaultCommit.SINK_TABLES.toArray()));
      List<String> missing = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          missing.add(rs.getString(1));
        }
      }
      if (!missing.isEmpty()) {
        throw new IllegalStateException(SinkConfig.WHO + ": vault tables " + missing
            + " are missing: jobs dwh creates them before it starts the load");
      }
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + ": cannot prepare the vault ("
          + config + "): " + e.getMessage(), e);
    }
  }

  @Override
  public boolean useCommitCoordinator() {
    return true;
  }

  @Override
  public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
    return new Factory(config);
  }

  @Override
  public StreamingDataWriterFactory createStreamingWriterFactory(PhysicalWriteInfo info) {
    return new Factory(config);
  }

  @Override
  public void commit(WriterCommitMessage[] messages) {
    commit(batchEpoch, messages);
  }

  @Override
  public void commit(long epochId, WriterCommitMessage[] messages) {
    List<VaultRow> rows = new ArrayList<>();
    for (WriterCommitMessage m : messages) {
      if (m instanceof VaultRow.Batch b) {
        rows.addAll(b.rows());
      }
    }
    long start = System.nanoTime();
    VaultCommit.Counts c;
    try {
      c = VaultCommit.run(config, epochId, rows);
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + " vault sink '" + config.target.sinkId
          + "' epoch " + epochId + ": commit failed: " + e.getMessage()
          + " (replaying the batch is safe: what was committed is skipped)", e);
    }
    LOG.info("{} vault sink '{}' epoch {}: {} events, {} hub, {} link, {} satellite rows, {}"
            + " quarantined, {} skipped in {} ms", SinkConfig.WHO, config.target.sinkId, epochId,
        c.events(), c.hubs(), c.links(), c.satellites(), c.quarantined(), c.skipped(),
        (System.nanoTime() - start) / 1_000_000);
  }

  @Override
  public void abort(WriterCommitMessage[] messages) {
    abort(batchEpoch, messages);
  }

  @Override
  public void abort(long epochId, WriterCommitMessage[] messages) {
    LOG.warn("{} vault sink '{}' epoch {} aborted; nothing written", SinkConfig.WHO,
        config.target.sinkId, epochId);
  }

  /** Serialized to the executors; one collecting writer per task attempt. */
  private record Factory(VaultConfig config)
      implements DataWriterFactory, StreamingDataWriterFactory {
    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
      return new VaultWriter(config);
    }

    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId, long epochId) {
      return new VaultWriter(config);
    }
  }
}
