package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.junit.jupiter.api.Test;
import platform.spark.sink.TestRows.Events;

/**
 * One 200,000-event batch (10% invalid, unique e-mails) staged by two tasks in parallel,
 * as on the platform's two cores, then committed: exactly-once, its replay, a batch with
 * one re-sent event (which takes the deduplicating path), and the append baseline. The figures are printed; the README records them.
 */
class CommitBenchmarkTest {
  private static final int ROWS = 200_000;
  private static final int TASKS = 2;
  private static final int ROUNDS = 3;

  private record Figures(long stageMs, long commitMs, String counts) {
  }

  @Test
  void commitOf200kRows() throws Exception {
    try (PgTestDb db = new PgTestDb()) {
      // Warm-up: JIT, PostgreSQL's catalog caches, connection set-up.
      run(db, "warm", "exactly-once", 0, 20_000, false);
      // Best of three, interleaved: the machine is shared, single runs are noisy.
      Figures once = null, replay = null, append = null, resent = null;
      for (int i = 0; i < ROUNDS; i++) {
        long from = (long) i * ROWS;
        Figures o = run(db, "bench", "exactly-once", from, ROWS, false);
        Figures r = run(db, "bench", "exactly-once", from, ROWS, false);
        Figures a = run(db, "bench-append", "append", from, ROWS, false);
        Figures d = run(db, "bench", "exactly-once", from, ROWS, true);
        assertEquals("180000/20000/0/0", o.counts());
        assertEquals("0/0/0/200000", r.counts());
        assertEquals("180000/20000/0/0", a.counts());
        assertEquals("179999/20001/1/0", d.counts());
        once = best(once, o);
        replay = best(replay, r);
        append = best(append, a);
        resent = best(resent, d);
      }
      System.out.printf("pg-exactly-once: %d rows, best of %d: staging in %d tasks %d ms"
              + " (%.0f rows/s); commit exactly-once %d ms (%.0f rows/s), its replay %d ms,"
              + " with one re-sent event %d ms, append %d ms (%.0f rows/s);"
              + " exactly-once/append = %.2f%n",
          ROWS, ROUNDS, TASKS, once.stageMs(), ROWS * 1000.0 / once.stageMs(), once.commitMs(),
          ROWS * 1000.0 / once.commitMs(), replay.commitMs(), resent.commitMs(),
          append.commitMs(), ROWS * 1000.0 / append.commitMs(),
          (double) once.commitMs() / append.commitMs());
    }
  }

  private static Figures best(Figures a, Figures b) {
    return a == null ? b : new Figures(Math.min(a.stageMs(), b.stageMs()),
        Math.min(a.commitMs(), b.commitMs()), a.counts());
  }

  /**
   * Stages and commits offsets [from, from + rows) of Kafka partition 0, or with `resend`
   * of partition 1, whose first event re-sends partition 0's first.
   */
  private static Figures run(PgTestDb db, String sinkId, String mode, long from, int rows,
      boolean resend) throws Exception {
    PgSinkWrite w = TestRows.write(TestRows.config(db, sinkId, "mode", mode));
    Events ev = new Events(sinkId);
    ExecutorService pool = Executors.newFixedThreadPool(TASKS);
    long start = System.nanoTime();
    List<Future<WriterCommitMessage>> tasks = new ArrayList<>();
    for (int t = 0; t < TASKS; t++) {
      int task = t;
      tasks.add(pool.submit(() -> {
        try (DataWriter<InternalRow> dw = w.createStreamingWriterFactory(() -> TASKS)
            .createWriter(task, System.nanoTime(), 0)) {
          // Rows are made on the fly, as Spark hands them over: nothing is buffered.
          for (long o = from + task; o < from + rows; o += TASKS) {
            int kafkaPartition = resend ? 1 : 0;
            String email = resend && o == from ? sinkId + ".0.0@example.com"
                : sinkId + "." + kafkaPartition + "." + o + "@example.com";
            dw.write(o % 10 == 9 ? ev.invalid("malformed JSON", kafkaPartition, o)
                : ev.valid(email, kafkaPartition, o));
          }
          return dw.commit();
        }
      }));
    }
    WriterCommitMessage[] messages = new WriterCommitMessage[TASKS];
    for (int t = 0; t < TASKS; t++) {
      messages[t] = tasks.get(t).get();
    }
    pool.shutdown();
    long staged = System.nanoTime();
    w.commit(0, messages);
    long committed = System.nanoTime();
    String counts = db.string("SELECT concat_ws('/', rows_written, rows_quarantined,"
        + " rows_duplicate, rows_skipped) FROM stream_sink_commits WHERE sink_id = '" + sinkId
        + "' ORDER BY commit_id DESC LIMIT 1");
    return new Figures((staged - start) / 1_000_000, (committed - staged) / 1_000_000, counts);
  }
}
