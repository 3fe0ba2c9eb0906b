package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The replica write against the local stack's MySQL (MariaDB), through a real local
 * SparkSession: a scratch table with a primary key and a unique e-mail, change events
 * written as batches, the table and the sink's bookkeeping read back with plain SQL.
 */
class ReplicaWriteTest {
  private static SparkSession spark;
  private static String url;
  private static String user;
  private static String password;
  private static final String TABLE = "sink_test_" + UUID.randomUUID().toString()
      .replace("-", "").substring(0, 12);
  private static final String SINK = "test." + TABLE;
  private static final String TOPIC = "pg.public." + TABLE;

  private static final StructType SCHEMA = new StructType()
      .add("__op", DataTypes.StringType)
      .add("__reason", DataTypes.StringType)
      .add("__raw", DataTypes.BinaryType)
      .add("__unknown_columns", DataTypes.StringType)
      .add("topic", DataTypes.StringType)
      .add("partition", DataTypes.IntegerType)
      .add("offset", DataTypes.LongType)
      .add("id", DataTypes.LongType)
      .add("email", DataTypes.StringType)
      .add("amount", DataTypes.createDecimalType(12, 2))
      .add("seen_at", DataTypes.TimestampType);

  @BeforeAll
  static void start() throws Exception {
    String host = env("MYSQL_HOST", "localhost");
    url = "jdbc:mysql://" + host + ":" + env("MYSQL_PORT", "3306") + "/"
        + env("MYSQL_DB", "mysql_finals_db");
    user = env("MYSQL_USER", "finals_user");
    password = env("MYSQL_PASSWORD", null);
    sql("CREATE TABLE " + TABLE + " (id BIGINT NOT NULL PRIMARY KEY,"
        + " email VARCHAR(100) COLLATE utf8mb4_bin NOT NULL, amount DECIMAL(12,2),"
        + " seen_at DATETIME(6), UNIQUE KEY (email))");
    spark = SparkSession.builder().master("local[2]").appName("replica-write-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate();
  }

  @AfterAll
  static void stop() throws Exception {
    if (spark != null) {
      spark.stop();
    }
    sql("DROP TABLE IF EXISTS " + TABLE);
    sql("DELETE FROM cdc_sink_offsets WHERE sink_id = '" + SINK + "'");
    sql("DELETE FROM cdc_sink_commits WHERE sink_id = '" + SINK + "'");
    sql("DELETE FROM cdc_quarantine WHERE sink_id = '" + SINK + "'");
  }

  @BeforeEach
  void clean() throws Exception {
    sql("DELETE FROM " + TABLE);
    sql("DELETE FROM cdc_sink_offsets WHERE sink_id = '" + SINK + "'");
    sql("DELETE FROM cdc_quarantine WHERE sink_id = '" + SINK + "'");
  }

  // The value .env gives, unless the environment sets it (the sink reads the password
  // from the environment; surefire passes MYSQL_PASSWORD from .env too).
  private static String env(String name, String fallback) throws IOException {
    String v = System.getenv(name);
    if (v != null && !v.isEmpty()) {
      return v;
    }
    Path dotenv = Path.of("../../../.env");
    if (Files.exists(dotenv)) {
      for (String line : Files.readAllLines(dotenv, StandardCharsets.UTF_8)) {
        if (line.startsWith(name + "=")) {
          return line.substring(name.length() + 1).replace("\"", "");
        }
      }
    }
    if (fallback == null) {
      throw new IllegalStateException(name + " is not set");
    }
    return fallback;
  }

  private static void sql(String statement) throws SQLException {
    try (Connection c = DriverManager.getConnection(url, user, password);
        Statement st = c.createStatement()) {
      st.execute(statement);
    }
  }

  private static List<String> rows(String query) throws SQLException {
    List<String> out = new ArrayList<>();
    try (Connection c = DriverManager.getConnection(url, user, password);
        Statement st = c.createStatement(); ResultSet rs = st.executeQuery(query)) {
      int n = rs.getMetaData().getColumnCount();
      while (rs.next()) {
        List<String> cells = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
          cells.add(String.valueOf(rs.getObject(i)));
        }
        out.add(String.join("|", cells));
      }
    }
    return out;
  }

  private static Row upsert(long offset, long id, String email, String amount) {
    return RowFactory.create("upsert", null, null, null, TOPIC, 0, offset, id, email,
        amount == null ? null : new java.math.BigDecimal(amount),
        java.sql.Timestamp.valueOf("2025-12-31 23:59:59.123456"));
  }

  private static Row delete(long offset, long id) {
    return RowFactory.create("delete", null, null, null, TOPIC, 0, offset, id, null, null, null);
  }

  private static Row other(long offset, String op, String reason, String unknown) {
    return RowFactory.create(op, reason, "{\"raw\":1}".getBytes(StandardCharsets.UTF_8), unknown,
        TOPIC, 0, offset, null, null, null, null);
  }

  private static void write(List<Row> rows, long generation) {
    Dataset<Row> df = spark.createDataFrame(rows, SCHEMA).repartition(2);
    df.write().format("pg-exactly-once").mode(SaveMode.Append)
        .option("write", "replica")
        .option("url", url)
        .option("user", user)
        .option("passwordEnv", "MYSQL_PASSWORD")
        .option("sinkId", SINK)
        .option("table", TABLE)
        .option("generation", Long.toString(generation))
        .save();
  }

  @Test
  void theLastChangeOfAKeyWinsAndAReplayChangesNothing() throws Exception {
    write(List.of(
        upsert(0, 1, "a@x.io", "1.00"),
        upsert(1, 2, "b@x.io", "2.00"),
        upsert(2, 1, "a@x.io", "1.50"),
        delete(3, 2),
        other(4, "tombstone", null, null),
        upsert(5, 3, "c@x.io", "3.00"),
        delete(6, 3),
        upsert(7, 3, "c2@x.io", "3.30"),
        other(8, null, "not a change event", null),
        upsert(9, 4, "d@x.io", null)), 0);
    List<String> want = List.of(
        "1|a@x.io|1.50|2025-12-31T23:59:59.123456",
        "3|c2@x.io|3.30|2025-12-31T23:59:59.123456",
        "4|d@x.io|null|2025-12-31T23:59:59.123456");
    assertEquals(want, rows("SELECT id, email, amount, seen_at FROM " + TABLE + " ORDER BY id"));
    assertEquals(List.of("8|not a change event|{\"raw\":1}"), rows("SELECT kafka_offset,"
        + " reason, CAST(raw_payload AS CHAR) FROM cdc_quarantine WHERE sink_id = '" + SINK
        + "'"));
    assertEquals(List.of("10|0"), rows("SELECT next_offset, generation FROM cdc_sink_offsets"
        + " WHERE sink_id = '" + SINK + "'"));

    // A replay of offsets it holds changes nothing, even where the table moved since.
    sql("UPDATE " + TABLE + " SET amount = 9.99 WHERE id = 1");
    write(List.of(upsert(2, 1, "a@x.io", "1.50"), delete(6, 3), upsert(9, 4, "d@x.io", "4")),
        0);
    assertEquals("1|a@x.io|9.99", rows("SELECT id, email, amount FROM " + TABLE
        + " WHERE id = 1").get(0));
    assertEquals(3, rows("SELECT id FROM " + TABLE).size());
    // ...while a new offset in the same write is applied.
    write(List.of(upsert(9, 4, "d@x.io", "4"), upsert(10, 5, "e@x.io", "5")), 0);
    assertEquals(List.of("4|null", "5|5.00"), rows("SELECT id, amount FROM " + TABLE
        + " WHERE id >= 4 ORDER BY id"));
  }

  @Test
  void aTruncateEmptiesTheTableAndWhatFollowsItIsApplied() throws Exception {
    write(List.of(upsert(0, 1, "a@x.io", "1"), upsert(1, 2, "b@x.io", "2")), 0);
    write(List.of(upsert(2, 3, "c@x.io", "3"), other(3, "truncate", null, null),
        upsert(4, 2, "b2@x.io", "2"), delete(5, 9)), 0);
    assertEquals(List.of("2|b2@x.io"), rows("SELECT id, email FROM " + TABLE + " ORDER BY id"));
  }

  @Test
  void rowsSwappingAUniqueValueAreAppliedInSourceOrder() throws Exception {
    write(List.of(upsert(0, 1, "x@x.io", "1"), upsert(1, 2, "y@x.io", "2")), 0);
    // PostgreSQL order: 1 -> tmp, 2 -> x, 1 -> y. Reduced per key, 1 -> y would
    // collide with 2 still holding y.
    write(List.of(upsert(2, 1, "tmp@x.io", "1"), upsert(3, 2, "x@x.io", "2"),
        upsert(4, 1, "y@x.io", "1")), 0);
    assertEquals(List.of("1|y@x.io", "2|x@x.io"), rows("SELECT id, email FROM " + TABLE
        + " ORDER BY id"));
  }

  @Test
  void aColumnTheReplicaLacksStopsTheTableWithOneClearLine() throws Exception {
    write(List.of(upsert(0, 1, "a@x.io", "1")), 0);
    Exception e = assertThrows(Exception.class, () -> write(List.of(
        upsert(1, 2, "b@x.io", "2"), other(2, "upsert", null, "color")), 0));
    String message = rootMessage(e);
    assertTrue(message.contains("table " + TABLE) && message.contains("color")
        && message.contains("does not have"), message);
    assertEquals(List.of("1"), rows("SELECT id FROM " + TABLE), "nothing of the batch applied");
    assertEquals(List.of("1"), rows("SELECT next_offset FROM cdc_sink_offsets WHERE sink_id = '"
        + SINK + "'"));
  }

  @Test
  void aReloadedReplicaMakesTheQueryRestart() throws Exception {
    write(List.of(upsert(0, 1, "a@x.io", "1")), 0);
    sql("UPDATE cdc_sink_offsets SET next_offset = 0, generation = generation + 1"
        + " WHERE target_table = '" + TABLE + "'");
    Exception e = assertThrows(Exception.class,
        () -> write(List.of(upsert(1, 2, "b@x.io", "2")), 0));
    assertTrue(rootMessage(e).contains("reloaded by jobs replicate"), rootMessage(e));
    write(List.of(upsert(0, 1, "a@x.io", "1"), upsert(1, 2, "b@x.io", "2")), 1);
    assertEquals(List.of("1", "2"), rows("SELECT id FROM " + TABLE + " ORDER BY id"));
  }

  private static String rootMessage(Throwable e) {
    StringBuilder all = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      all.append(t.getMessage()).append(" / ");
    }
    return all.toString();
  }
}
