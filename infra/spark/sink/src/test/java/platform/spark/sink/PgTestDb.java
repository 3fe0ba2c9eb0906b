package platform.spark.sink;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A scratch schema sink_test_&lt;random&gt; in the local stack's PostgreSQL, holding users
 * (with its e-mail rule) and the sink's tables exactly as infra/db/postgres/schema.sql
 * defines them, so the tests also check that SQL. Dropped on close; nothing else in the
 * database is touched. The password comes from POSTGRES_PASSWORD, as the sink's does.
 */
final class PgTestDb implements AutoCloseable {
  static final String PASSWORD_ENV = "POSTGRES_PASSWORD";
  private static final Path SCHEMA_SQL = Path.of("../../db/postgres/schema.sql");
  private static final Pattern USERS = Pattern.compile(
      "^CREATE TABLE IF NOT EXISTS users \\(.*?\\n\\);", Pattern.DOTALL | Pattern.MULTILINE);
  private static final Pattern EMAIL_RULE = Pattern.compile(
      "^DO \\$\\$.*?users_email_lower.*?\\n\\$\\$;", Pattern.DOTALL | Pattern.MULTILINE);
  /** Top-level statements on the sink's tables (no ';' inside them). */
  private static final Pattern SINK_STATEMENT = Pattern.compile(
      "^(?:CREATE TABLE IF NOT EXISTS|ALTER TABLE|CREATE INDEX IF NOT EXISTS \\w+ ON)"
          + " (?:users_quarantine|stream_sink_\\w+)\\b[^;]*", Pattern.MULTILINE);

  final String host = env("POSTGRES_HOST", "localhost");
  final String port = env("POSTGRES_PORT", "5432");
  final String db = env("POSTGRES_DB", "postgres_finals_db");
  final String user = env("POSTGRES_USER", "finals_user");
  final String password = System.getenv(PASSWORD_ENV);
  final String schema = "sink_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);

  PgTestDb() throws SQLException, IOException {
    if (password == null || password.isEmpty()) {
      throw new IllegalStateException(PASSWORD_ENV + " is not set: export it, or run mvn"
          + " where the repository's .env is (pom.xml reads it then)");
    }
    String sql = Files.readString(SCHEMA_SQL);
    List<String> statements = new ArrayList<>();
    statements.add(one(USERS, sql));
    statements.add(one(EMAIL_RULE, sql));
    statements.addAll(sinkStatements(sql));
    try (Connection c = DriverManager.getConnection(baseUrl(), user, password);
        Statement st = c.createStatement()) {
      st.execute("CREATE SCHEMA " + schema);
      st.execute("SET search_path TO " + schema);
      for (String s : statements) {
        st.execute(s);
      }
    }
  }

  /** schema.sql's statements creating or upgrading the sink's tables, in order. */
  static List<String> sinkStatements(String schemaSql) {
    List<String> found = new ArrayList<>();
    Matcher m = SINK_STATEMENT.matcher(schemaSql);
    while (m.find()) {
      found.add(m.group());
    }
    return found;
  }

  static String schemaSql() throws IOException {
    return Files.readString(SCHEMA_SQL);
  }

  private static String one(Pattern p, String sql) {
    Matcher m = p.matcher(sql);
    if (!m.find()) {
      throw new IllegalStateException(SCHEMA_SQL + ": no match for " + p.pattern());
    }
    return m.group();
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
    o.put("passwordEnv", PASSWORD_ENV);
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

  List<String> strings(String query) throws SQLException {
    List<String> out = new ArrayList<>();
    try (Connection c = connect();
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(query)) {
      while (rs.next()) {
        out.add(rs.getString(1));
      }
    }
    return out;
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
