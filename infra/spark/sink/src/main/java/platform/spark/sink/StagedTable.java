package platform.spark.sink;

import java.io.Serializable;
import java.util.Map;
import org.apache.spark.sql.connector.write.WriterCommitMessage;

/**
 * What a committed task attempt tells the driver.
 *
 * @param table its staging table, null when the partition was empty (nothing created)
 * @param rows rows staged in it
 * @param nextOffsets per Kafka partition in it, its highest offset + 1: what the commit
 *     records as progress, without scanning the staged rows for it
 */
record StagedTable(String table, long rows, Map<KafkaPartition, Long> nextOffsets)
    implements WriterCommitMessage {

  record KafkaPartition(String topic, int partition) implements Serializable {
  }
}
