package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.sql.Connection;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The vault write's rules on a real PostgreSQL (a scratch schema): hubs once per key,
 * a satellite row only when the hash diff changes (within a batch and against the
 * table), replayed events skipped by offset, a truncate marking live keys deleted.
 * The tables are minimal stand-ins with the columns the sink relies on (the job
 * creates the real ones from its model).
 */
class VaultCommitTest {
  private static final String TOPIC = "pg.s.things";
  private PgTestDb db;

  @BeforeEach
  void setUp() throws Exception {
    db = new PgTestDb();
    db.execute("CREATE TABLE vault_sink_offsets (sink_id TEXT, topic TEXT, kafka_partition INT,"
        + " next_offset BIGINT NOT NULL, updated_at TIMESTAMPTZ DEFAULT now(),"
        + " PRIMARY KEY (sink_id, topic, kafka_partition));"
        + "CREATE TABLE vault_sink_commits (commit_id BIGINT GENERATED ALWAYS AS IDENTITY,"
        + " sink_id TEXT, epoch BIGINT, events BIGINT, hub_rows BIGINT, link_rows BIGINT,"
        + " satellite_rows BIGINT, quarantined BIGINT, skipped BIGINT,"
        + " committed_at TIMESTAMPTZ DEFAULT now());"
        + "CREATE TABLE vault_quarantine (topic TEXT, kafka_partition INT, kafka_offset BIGINT,"
        + " reason TEXT NOT NULL, raw_bytes BYTEA, received_at TIMESTAMPTZ DEFAULT now(),"
        + " PRIMARY KEY (topic, kafka_partition, kafka_offset));"
        + "CREATE TABLE hub_thing (hk CHAR(32) PRIMARY KEY, thing_id INT NOT NULL,"
        + " load_ts TIMESTAMPTZ NOT NULL, record_source TEXT NOT NULL);"
        + "CREATE TABLE sat_thing (hk CHAR(32) NOT NULL, seq BIGINT NOT NULL,"
        + " load_ts TIMESTAMPTZ NOT NULL, applied_ts TIMESTAMPTZ NOT NULL,"
        + " record_source TEXT NOT NULL, hashdiff CHAR(32) NOT NULL, is_deleted BOOLEAN NOT NULL,"
        + " name TEXT, PRIMARY KEY (hk, seq))");
  }

  @AfterEach
  void tearDown() throws Exception {
    db.close();
  }

  private static VaultRow hub(long offset, String hk, int id) {
    return new VaultRow(TOPIC, 0, offset, "hub", "hub_thing", "{\"hk\":\"" + hk
        + "\",\"thing_id\":" + id + ",\"load_ts\":\"2026-01-01T00:00:00Z\","
        + "\"record_source\":\"t\"}", null, null);
  }

  private static VaultRow sat(long offset, String hk, String name) {
    String hashdiff = String.format("%032d", name.hashCode() & 0x7fffffff);
    return new VaultRow(TOPIC, 0, offset, "sat", "sat_thing", "{\"hk\":\"" + hk
        + "\",\"seq\":" + offset + ",\"load_ts\":\"2026-01-01T00:00:00Z\","
        + "\"applied_ts\":\"2026-01-01T00:00:0" + offset + "Z\",\"record_source\":\"t\","
        + "\"hashdiff\":\"" + hashdiff + "\",\"is_deleted\":false,\"name\":\"" + name + "\"}",
        null, null);
  }

  private VaultCommit.Counts commit(List<VaultRow> rows) throws Exception {
    try (Connection c = db.connect()) {
      c.setAutoCommit(false);
      VaultCommit.Counts counts = VaultCommit.apply(c, "test", 0, rows);
      c.commit();
      return counts;
    }
  }

  private List<String> states(String hk) throws Exception {
    return db.strings("SELECT coalesce(name, '<deleted>') FROM sat_thing WHERE hk = '" + hk
        + "' ORDER BY seq");
  }

  @Test
  void changesAddRowsRepeatsAndReplaysAddNone() throws Exception {
    String a = "a".repeat(32);
    List<VaultRow> first = new ArrayList<>(List.of(
        hub(0, a, 1), sat(0, a, "x"),
        hub(1, a, 1), sat(1, a, "x"), // re-delivered unchanged: no new state
        hub(2, a, 1), sat(2, a, "y")));
    VaultCommit.Counts c = commit(first);
    assertEquals(1, c.hubs());
    assertEquals(2, c.satellites());
    assertEquals(List.of("x", "y"), states(a));

    // The same batch again (a replay) plus one event that repeats the latest state.
    List<VaultRow> second = new ArrayList<>(first);
    second.add(hub(3, a, 1));
    second.add(sat(3, a, "y"));
    c = commit(second);
    assertEquals(3, c.skipped());
    assertEquals(0, c.hubs() + c.satellites());
    assertEquals(List.of("x", "y"), states(a));

    // A change back to an earlier state is a change; a truncate marks the key deleted.
    VaultRow truncate = new VaultRow(TOPIC, 0, 5, "truncate", "sat_thing",
        "{\"seq\":5,\"load_ts\":\"2026-01-01T00:00:00Z\",\"applied_ts\":\"2026-01-01T00:00:05Z\","
            + "\"record_source\":\"t\",\"hashdiff\":\"" + "d".repeat(32) + "\"}", null, null);
    c = commit(List.of(sat(4, a, "x"), truncate));
    assertEquals(2, c.satellites());
    assertEquals(List.of("x", "y", "x", "<deleted>"), states(a));
    assertEquals("t", db.string("SELECT is_deleted FROM sat_thing WHERE hk = '" + a
        + "' ORDER BY seq DESC LIMIT 1"));
    assertEquals("6", db.string("SELECT next_offset FROM vault_sink_offsets"));
  }

  @Test
  void rowsWithoutTimesGetTheCommitsTime() throws Exception {
    // What the job sends: no load_ts anywhere, applied_ts only where Debezium gave one.
    String b = "b".repeat(32);
    String c = "c".repeat(32);
    commit(List.of(
        new VaultRow(TOPIC, 0, 0, "hub", "hub_thing", "{\"hk\":\"" + b
            + "\",\"thing_id\":2,\"record_source\":\"t\"}", null, null),
        new VaultRow(TOPIC, 0, 1, "sat", "sat_thing", "{\"hk\":\"" + b
            + "\",\"seq\":1,\"applied_ts\":\"2026-01-01T00:00:01Z\",\"record_source\":\"t\","
            + "\"hashdiff\":\"" + "1".repeat(32) + "\",\"is_deleted\":false}", null, null),
        new VaultRow(TOPIC, 0, 2, "sat", "sat_thing", "{\"hk\":\"" + c
            + "\",\"seq\":2,\"record_source\":\"t\","
            + "\"hashdiff\":\"" + "2".repeat(32) + "\",\"is_deleted\":false}", null, null)));
    // now() is the transaction's start: one load time for the whole batch, the same
    // instant the commit record carries.
    assertEquals("1", db.string("SELECT count(DISTINCT load_ts) FROM (SELECT load_ts FROM"
        + " hub_thing UNION ALL SELECT load_ts FROM sat_thing) t"));
    assertEquals("t", db.string("SELECT bool_and(h.load_ts = k.committed_at) FROM hub_thing h,"
        + " vault_sink_commits k"));
    assertEquals("t", db.string("SELECT load_ts > now() - interval '1 minute' FROM hub_thing"));
    assertEquals("2026-01-01 00:00:01+00", db.string("SELECT applied_ts AT TIME ZONE 'UTC' || '+00'"
        + " FROM sat_thing WHERE hk = '" + b + "'"));
    assertEquals("t", db.string("SELECT applied_ts = load_ts FROM sat_thing WHERE hk = '" + c + "'"));
  }

  @Test
  void quarantinedEventsKeepTheirBytesAndAdvanceTheOffsets() throws Exception {
    byte[] raw = {(byte) 0xff, 0x00, 0x41};
    VaultCommit.Counts c = commit(List.of(
        new VaultRow(TOPIC, 0, 7, null, null, null, "not UTF-8", raw)));
    assertEquals(1, c.quarantined());
    assertEquals("\\xff0041", db.string("SELECT raw_bytes FROM vault_quarantine"));
    assertEquals("8", db.string("SELECT next_offset FROM vault_sink_offsets"));
  }
}
