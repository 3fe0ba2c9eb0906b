package platform.spark.sink;

import org.apache.spark.sql.connector.write.WriterCommitMessage;

/**
 * What one partition's transaction did, sent back to the driver for the batch log line.
 *
 * @param written rows inserted into users
 * @param quarantined rows inserted into users_quarantine (includes duplicates)
 * @param duplicates of those, rows quarantined as 'duplicate email'
 * @param skipped rows ignored because this (sink, batch, partition) was already committed
 */
record SinkCommitMessage(int partitionId, boolean replayed, long written, long quarantined,
    long duplicates, long skipped) implements WriterCommitMessage {
}
