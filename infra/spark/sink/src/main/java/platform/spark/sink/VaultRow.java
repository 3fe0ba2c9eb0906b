package platform.spark.sink;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.sql.connector.write.WriterCommitMessage;

/**
 * One vault row a task read, for the driver's commit.
 *
 * @param kind hub, link, sat, truncate or skip; null when quarantined
 * @param row the target table's row as a JSON object (column names as keys)
 * @param raw the event as Kafka holds it, kept for the quarantine only
 */
record VaultRow(String topic, int partition, long offset, String kind, String target,
    String row, String reason, byte[] raw) implements Serializable {

  /** What a task sends to the driver: its partition's rows, in read order. */
  record Batch(List<VaultRow> rows) implements WriterCommitMessage {
  }
}
