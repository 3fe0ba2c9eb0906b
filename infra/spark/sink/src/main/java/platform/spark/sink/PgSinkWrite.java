package platform.spark.sink;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.connector.write.streaming.StreamingDataWriterFactory;
import org.apache.spark.sql.connector.write.streaming.StreamingWrite;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Driver side of a write: the executors only stage rows (StagingWriter); this commits
 * each batch in one PostgreSQL transaction (BatchCommit) and logs what it did.
 */
final class PgSinkWrite implements Write, BatchWrite, StreamingWrite {
  private static final Logger LOG = LoggerFactory.getLogger(PgSinkWrite.class);
  private static final Set<String> PREPARED = ConcurrentHashMap.newKeySet();

  private final SinkConfig config;
  private final long batchEpoch;

  PgSinkWrite(SinkConfig config, String queryId, CaseInsensitiveStringMap options) {
    this.config = config;
    this.batchEpoch = batchEpoch(queryId, options);
  }

  /**
   * Batch writes have no epoch: the batchId option, else a negative number from the
   * (random) query id, which never looks like a streaming epoch in stream_sink_commits.
   */
  private static long batchEpoch(String queryId, CaseInsensitiveStringMap options) {
    String id = options.get(SinkConfig.OPT_BATCH_ID);
    if (id != null) {
      try {
        return Long.parseLong(id.trim());
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(SinkConfig.WHO + ": option '"
            + SinkConfig.OPT_BATCH_ID + "' must be an integer, got '" + id + "'", e);
      }
    }
    long bits = UUID.fromString(queryId).getMostSignificantBits() & Long.MAX_VALUE;
    return -bits - 1;
  }

  @Override
  public String description() {
    return SinkConfig.WHO + "[" + config.sinkId + "]";
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

  /**
   * Fails fast on a bad URL, credentials or password variable, and creates missing
   * tables, once per driver and target: Spark builds the write again while planning
   * every micro-batch.
   */
  private void prepare() {
    String target = config.url + "\u0000" + config.user + "\u0000" + config.sinkId;
    if (PREPARED.contains(target)) {
      return;
    }
    try (Connection conn = config.connect()) {
      if (config.createTables) {
        SinkTables.createIfMissing(conn);
      }
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + ": cannot prepare PostgreSQL ("
          + config + "): " + e.getMessage(), e);
    }
    PREPARED.add(target);
    LOG.info("{} sink '{}' ready ({})", SinkConfig.WHO, config.sinkId, config);
  }

  // Spark's single-committer rule: one attempt per partition commits its staging table,
  // so the driver gets exactly one table per non-empty partition.
  @Override
  public boolean useCommitCoordinator() {
    return true;
  }

  @Override
  public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
    return new PgWriterFactory(config, batchEpoch);
  }

  @Override
  public StreamingDataWriterFactory createStreamingWriterFactory(PhysicalWriteInfo info) {
    return new PgWriterFactory(config, -1); // unused: streaming writers get their epoch
  }

  @Override
  public void commit(WriterCommitMessage[] messages) {
    commit(batchEpoch, messages);
  }

  @Override
  public void commit(long epochId, WriterCommitMessage[] messages) {
    List<StagedTable> tables = staged(messages);
    long start = System.nanoTime();
    BatchCommit.Counts c;
    try {
      c = BatchCommit.run(config, epochId, tables);
    } catch (SQLException e) {
      throw new IllegalStateException(SinkConfig.WHO + " sink '" + config.sinkId + "' epoch "
          + epochId + ": commit failed" + lockHint(e) + ": " + e.getMessage()
          + " (replaying the batch is safe: what was committed is skipped)", e);
    }
    LOG.info("{} sink '{}' epoch {}: {} written to users, {} quarantined ({} duplicates),"
            + " {} skipped as already committed; {} rows from {} staging tables in {} ms",
        SinkConfig.WHO, config.sinkId, epochId, c.written(), c.quarantined(), c.duplicates(),
        c.skipped(), tables.stream().mapToLong(StagedTable::rows).sum(), tables.size(),
        (System.nanoTime() - start) / 1_000_000);
  }

  private String lockHint(SQLException e) {
    return "55P03".equals(e.getSQLState())
        ? " (a lock was not granted within lockTimeoutMs=" + config.lockTimeoutMs + ")" : "";
  }

  @Override
  public void abort(WriterCommitMessage[] messages) {
    abort(batchEpoch, messages);
  }

  /** Drops the staging tables of the committed tasks; the next commit drops any left. */
  @Override
  public void abort(long epochId, WriterCommitMessage[] messages) {
    List<String> names = new ArrayList<>();
    staged(messages).forEach(t -> names.add(t.table()));
    try (Connection conn = config.connect()) {
      BatchCommit.drop(conn, names);
    } catch (SQLException | RuntimeException e) {
      LOG.warn("{} sink '{}' epoch {} aborted; could not drop its staging tables ({}), the"
          + " next commit will", SinkConfig.WHO, config.sinkId, epochId, e.getMessage());
      return;
    }
    LOG.warn("{} sink '{}' epoch {} aborted; {} staging tables dropped, nothing written",
        SinkConfig.WHO, config.sinkId, epochId, names.size());
  }

  // Abort passes null for tasks that did not commit; empty partitions staged nothing.
  private static List<StagedTable> staged(WriterCommitMessage[] messages) {
    List<StagedTable> tables = new ArrayList<>();
    for (WriterCommitMessage m : messages) {
      if (m instanceof StagedTable t && t.table() != null) {
        tables.add(t);
      }
    }
    return tables;
  }
}
