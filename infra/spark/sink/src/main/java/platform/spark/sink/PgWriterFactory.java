package platform.spark.sink;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.streaming.StreamingDataWriterFactory;

/** Serialized to the executors; one writer per (batch, partition) task attempt. */
final class PgWriterFactory implements DataWriterFactory, StreamingDataWriterFactory {
  private static final long serialVersionUID = 1L;

  private final SinkConfig config;
  private final long batchId; // batch writes only; streaming gets the epoch per writer

  PgWriterFactory(SinkConfig config, long batchId) {
    this.config = config;
    this.batchId = batchId;
  }

  @Override
  public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
    return new PgDataWriter(config, batchId, partitionId);
  }

  @Override
  public DataWriter<InternalRow> createWriter(int partitionId, long taskId, long epochId) {
    return new PgDataWriter(config, epochId, partitionId);
  }
}
