package platform.spark.sink;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;

/**
 * One task attempt of a vault write: hands its rows to the driver, which commits the
 * whole batch in one PostgreSQL transaction (VaultCommit). Writes nothing itself.
 */
final class VaultWriter implements DataWriter<InternalRow> {
  private final VaultConfig config;
  private final List<VaultRow> rows = new ArrayList<>();

  VaultWriter(VaultConfig config) {
    this.config = config;
  }

  @Override
  public void write(InternalRow row) throws IOException {
    int[] at = config.at;
    if (row.isNullAt(at[5]) || row.isNullAt(at[6]) || row.isNullAt(at[7])) {
      throw new IOException(SinkConfig.WHO + ": a vault row has a NULL topic, partition or"
          + " offset; exactly-once is keyed on them");
    }
    rows.add(new VaultRow(row.getUTF8String(at[5]).toString(), row.getInt(at[6]),
        row.getLong(at[7]), text(row, at[0]), text(row, at[1]), text(row, at[2]),
        text(row, at[3]), row.isNullAt(at[4]) ? null : row.getBinary(at[4])));
  }

  private static String text(InternalRow row, int at) {
    return row.isNullAt(at) ? null : row.getUTF8String(at).toString();
  }

  @Override
  public VaultRow.Batch commit() {
    return new VaultRow.Batch(List.copyOf(rows));
  }

  @Override
  public void abort() {
    rows.clear();
  }

  @Override
  public void close() {
    // nothing held: the rows only travel to the driver
  }
}
