package platform.spark.sink;

import java.nio.ByteBuffer;
import java.sql.SQLException;
import org.apache.spark.unsafe.types.UTF8String;
import org.postgresql.copy.CopyIn;

/**
 * Encodes rows in PostgreSQL's binary COPY format into a fixed 64 KiB buffer that is
 * handed to the COPY whenever it fills, so a task's memory does not grow with its
 * partition. Binary rather than text: Spark's UTF-8 strings, longs and timestamps go
 * out as they are, with no escaping and no formatting (see the README for figures).
 */
final class BinaryCopy {
  private static final byte[] SIGNATURE =
      {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xFF, '\r', '\n', 0};
  /** Microseconds from 1970-01-01 (Spark) to 2000-01-01 (PostgreSQL's epoch). */
  static final long PG_EPOCH_MICROS = 946_684_800_000_000L;

  private final CopyIn copy;
  private final ByteBuffer buf = ByteBuffer.allocate(64 * 1024);

  BinaryCopy(CopyIn copy) {
    this.copy = copy;
    buf.put(SIGNATURE).putInt(0).putInt(0); // flags, header extension length
  }

  void startRow(int fields) throws SQLException {
    room(2);
    buf.putShort((short) fields);
  }

  void nul() throws SQLException {
    room(4);
    buf.putInt(-1);
  }

  void int4(int v) throws SQLException {
    room(8);
    buf.putInt(4).putInt(v);
  }

  /** BIGINT, and TIMESTAMP as microseconds since PostgreSQL's epoch. */
  void int8(long v) throws SQLException {
    room(12);
    buf.putInt(8).putLong(v);
  }

  /** TEXT; the caller makes sure the bytes are valid UTF-8 without NUL. */
  void text(UTF8String s) throws SQLException {
    if (s == null) {
      nul();
    } else if (s.numBytes() + 4 <= buf.capacity()) {
      room(s.numBytes() + 4);
      buf.putInt(s.numBytes());
      s.writeTo(buf);
    } else {
      bytes(s.getBytes());
    }
  }

  /** BYTEA. */
  void bytes(byte[] b) throws SQLException {
    if (b == null) {
      nul();
      return;
    }
    room(4);
    buf.putInt(b.length);
    if (b.length <= buf.remaining()) {
      buf.put(b);
    } else {
      flush();
      copy.writeToCopy(b, 0, b.length);
    }
  }

  /** Ends the COPY; returns the number of rows PostgreSQL took. */
  long finish() throws SQLException {
    room(2);
    buf.putShort((short) -1);
    flush();
    return copy.endCopy();
  }

  /** Abandons the COPY, so that the connection can roll back. */
  void cancel() throws SQLException {
    if (copy.isActive()) {
      copy.cancelCopy();
    }
  }

  private void room(int n) throws SQLException {
    if (buf.remaining() < n) {
      flush();
    }
  }

  private void flush() throws SQLException {
    if (buf.position() > 0) {
      copy.writeToCopy(buf.array(), 0, buf.position());
      buf.clear();
    }
  }
}
