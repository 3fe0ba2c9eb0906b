package platform.spark.sink;

import java.io.Serializable;
import java.util.List;
import org.apache.spark.sql.connector.write.WriterCommitMessage;

/**
 * One change event as a task read it, in JDBC values ready for MySQL.
 *
 * @param values the data columns in ReplicaConfig.columns order (NULL for the columns a
 *     delete does not carry)
 * @param reason why the event is quarantined (kind QUARANTINE), or the unknown columns
 *     (kind UNKNOWN_COLUMNS)
 * @param raw the event as Kafka holds it, kept for the quarantine only
 */
record Change(String topic, int partition, long offset, Kind kind, Object[] values,
    String reason, byte[] raw) implements Serializable {

  enum Kind { UPSERT, DELETE, TRUNCATE, TOMBSTONE, QUARANTINE, UNKNOWN_COLUMNS }

  /** What a task sends to the driver: its partition's change events, in read order. */
  record Batch(List<Change> changes) implements WriterCommitMessage {
  }
}
