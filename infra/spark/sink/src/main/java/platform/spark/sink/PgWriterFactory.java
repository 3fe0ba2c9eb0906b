package platform.spark.sink;

import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.streaming.StreamingDataWriterFactory;

/** Serialized to the executors; one staging writer per task attempt. */
final class PgWriterFactory implements DataWriterFactory, StreamingDataWriterFactory {
  private static final long serialVersionUID = 2L;

  private final SinkConfig config;
  private final long batchEpoch; // batch writes only; streaming gets the epoch per writer

  PgWriterFactory(SinkConfig config, long batchEpoch) {
    this.config = config;
    this.batchEpoch = batchEpoch;
  }

  @Override
  public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
    return new StagingWriter(config, batchEpoch, partitionId, taskId);
  }

  @Override
  public DataWriter<InternalRow> createWriter(int partitionId, long taskId, long epochId) {
    return new StagingWriter(config, epochId, partitionId, taskId);
  }
}
