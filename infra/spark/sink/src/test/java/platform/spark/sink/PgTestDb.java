package platform.spark.sink;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A scratch schema sink_test_<random> in the local stack's PostgreSQL, holding the sink's
 * three tables exactly as infra/db/postgres/schema.sql defines them (so the tests also
 * check that DDL). Dropped on close; nothing else in the database is touched.
 */
final class PgTestDb implements AutoCloseable {
  private static final Path SCHEMA_SQL = Path.of("../../db/postgres/schema.sql");
  private static final Pattern TABLE_DDL = Pattern.compile(
      "CREATE TABLE IF NOT EXISTS (users|users_quarantine|stream_sink_progress) \\(.*?\\n\\);",
      Pattern.DOTALL);

  final String host = env("POSTGRES_HOST", "localhost");
  final String port = env("POSTGRES_PORT", "5432");
  final String db = env("POSTGRES_DB", "postgres_finals_db");
  final String user = env("POSTGRES_USER", "finals_user");
  final String password = env("POSTGRES_PASSWORD", "finals_pass");
  final String schema = "sink_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);

  PgTestDb() throws SQLException, IOException {
    String sql = Files.readString(SCHEMA_SQL);
    Matcher m = TABLE_DDL.matcher(sql);
    try (Connection c = DriverManager.getConnection(baseUrl(), user, password);
        Statement st = c.createStatement()) {
      st.execute("CREATE SCHEMA " + schema);
      st.execute("SET search_path TO " + schema);
      int tables = 0;
      while (m.find()) {
        st.execute(m.group());
        tables++;
      }
      if (tables != 3) {
        throw new IllegalStateException(SCHEMA_SQL + ": expected 3 sink tables, found " + tables);
      }
    }
  }

  private String baseUrl() {
    return "jdbc:postgresql://" + host + ":" + port + "/" + db;
  }

  /** The URL the sink gets: the scratch schema is its current schema. */
  String url() {
    return baseUrl() + "?currentSchema=" + schema;
  }

  Map<String, String> options(String sinkId) {
    Map<String, String> o = new HashMap<>();
    o.put("url", url());
    o.put("user", user);
    o.put("password", password);
    o.put("sinkId", sinkId);
    return o;
  }

  Connection connect() throws SQLException {
    return DriverManager.getConnection(url(), user, password);
  }

  long count(String sqlFromWhere) throws SQLException {
    try (Connection c = connect();
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT count(*) " + sqlFromWhere)) {
      rs.next();
      return rs.getLong(1);
    }
  }

  String string(String query) throws SQLException {
    try (Connection c = connect();
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(query)) {
      return rs.next() ? rs.getString(1) : null;
    }
  }

  void execute(String sql) throws SQLException {
    try (Connection c = connect(); Statement st = c.createStatement()) {
      st.execute(sql);
    }
  }

  @Override
  public void close() throws SQLException {
    try (Connection c = DriverManager.getConnection(baseUrl(), user, password);
        Statement st = c.createStatement()) {
      st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    }
  }

  private static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isBlank() ? fallback : v;
  }
}
