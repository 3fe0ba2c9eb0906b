package platform.spark.sink;

import java.io.Serializable;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The database a write goes to, in either dialect the sink speaks: PostgreSQL (the
 * stream's users) or MySQL/MariaDB (the CDC replicas). Holds no password, only the name
 * of the variable holding it; toString shows neither the URL (it may carry credentials as
 * parameters) nor a password.
 */
final class JdbcTarget implements Serializable {
  private static final long serialVersionUID = 1L;

  static final String OPT_URL = "url";
  static final String OPT_USER = "user";
  static final String OPT_PASSWORD = "password";
  static final String OPT_SINK_ID = "sinkId";
  static final String OPT_LOCK_TIMEOUT_MS = "lockTimeoutMs";
  static final String OPT_SOCKET_TIMEOUT_SECONDS = "socketTimeoutSeconds";
  static final String OPT_CONNECT_TIMEOUT_SECONDS = "connectTimeoutSeconds";

  enum Dialect {
    POSTGRES("jdbc:postgresql:", "org.postgresql.Driver"),
    MYSQL("jdbc:mysql:", "com.mysql.cj.jdbc.Driver");

    final String prefix;
    final String driverClass;

    Dialect(String prefix, String driverClass) {
      this.prefix = prefix;
      this.driverClass = driverClass;
    }
  }

  final Dialect dialect;
  final String url;
  final String user;
  /** Name of the environment variable with the password; null: none is sent. */
  final String passwordEnv;
  final String sinkId;
  final int lockTimeoutMs;
  final int socketTimeoutSeconds;
  final int connectTimeoutSeconds;

  JdbcTarget(CaseInsensitiveStringMap options, Dialect dialect) {
    String who = SinkConfig.WHO;
    if (options.containsKey(OPT_PASSWORD)) {
      throw new IllegalArgumentException(who + ": option '" + OPT_PASSWORD + "' is refused:"
          + " passwords must not travel in Spark plans (they show in the Spark UI); put the"
          + " password in an environment variable of the Spark processes and pass its name"
          + " with option '" + EnvCredentials.OPTION + "'");
    }
    this.dialect = dialect;
    this.url = Options.required(options, OPT_URL);
    if (!url.startsWith(dialect.prefix)) {
      throw new IllegalArgumentException(who + ": option 'url' must be a " + dialect.prefix
          + " URL for this write");
    }
    this.user = Options.required(options, OPT_USER);
    this.sinkId = Options.required(options, OPT_SINK_ID);
    String env = options.get(EnvCredentials.OPTION);
    this.passwordEnv = env == null ? null : EnvCredentials.checkName(who, env);
    this.lockTimeoutMs = Options.positive(options, OPT_LOCK_TIMEOUT_MS, 30_000);
    this.socketTimeoutSeconds = Options.positive(options, OPT_SOCKET_TIMEOUT_SECONDS, 300);
    this.connectTimeoutSeconds = Options.positive(options, OPT_CONNECT_TIMEOUT_SECONDS, 10);
  }

  /**
   * A connection whose waits are all bounded: connecting, every socket read (a stuck
   * server or network), and every lock, so that a stuck task or commit fails and Spark
   * retries instead of holding the batch forever.
   */
  Connection connect() throws SQLException {
    Properties props = new Properties();
    props.setProperty("user", user);
    if (passwordEnv != null) {
      props.setProperty("password", EnvCredentials.password(SinkConfig.WHO, passwordEnv));
    }
    props.setProperty("tcpKeepAlive", "true");
    if (dialect == Dialect.POSTGRES) {
      // Makes the sink's sessions recognisable in pg_stat_activity.
      props.setProperty("ApplicationName", SinkConfig.WHO + ":" + sinkId);
      props.setProperty("connectTimeout", Integer.toString(connectTimeoutSeconds));
      props.setProperty("socketTimeout", Integer.toString(socketTimeoutSeconds));
    } else {
      props.setProperty("connectTimeout", Integer.toString(connectTimeoutSeconds * 1000));
      props.setProperty("socketTimeout", Integer.toString(socketTimeoutSeconds * 1000));
      props.setProperty("rewriteBatchedStatements", "true");
      props.setProperty("characterEncoding", "UTF-8");
    }
    // The driver instance, not DriverManager: Spark may load this jar in a class loader
    // that DriverManager does not search.
    Connection conn = driver().connect(url, props);
    if (conn == null) {
      throw new SQLException(SinkConfig.WHO + ": the " + dialect.driverClass
          + " driver does not accept the URL");
    }
    try (Statement st = conn.createStatement()) {
      if (dialect == Dialect.POSTGRES) {
        st.execute("SET lock_timeout = " + lockTimeoutMs);
      } else {
        int seconds = Math.max(1, (lockTimeoutMs + 999) / 1000);
        st.execute("SET SESSION innodb_lock_wait_timeout = " + seconds
            + ", lock_wait_timeout = " + seconds);
      }
    } catch (SQLException e) {
      conn.close();
      throw e;
    }
    return conn;
  }

  private Driver driver() throws SQLException {
    try {
      return (Driver) Class.forName(dialect.driverClass, true, JdbcTarget.class.getClassLoader())
          .getDeclaredConstructor().newInstance();
    } catch (ReflectiveOperationException e) {
      throw new SQLException(SinkConfig.WHO + ": JDBC driver " + dialect.driverClass
          + " is not on the Spark classpath", e);
    }
  }

  @Override
  public String toString() {
    return "sinkId=" + sinkId + ", user=" + user + ", passwordEnv=" + passwordEnv
        + ", lockTimeoutMs=" + lockTimeoutMs;
  }
}
