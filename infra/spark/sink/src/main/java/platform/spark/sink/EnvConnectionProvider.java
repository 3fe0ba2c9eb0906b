package platform.spark.sink;

import java.sql.Connection;
import java.sql.Driver;
import java.sql.SQLException;
import java.util.Map;
import java.util.Properties;
import org.apache.spark.sql.jdbc.JdbcConnectionProvider;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Credentials for Spark's own JDBC source and sink without a password in the plan:
 * {@code .option("connectionProvider", "platform-env").option("passwordEnv",
 * "POSTGRES_PASSWORD")} makes Spark connect with the password read from that
 * environment variable of the connecting process (see EnvCredentials). Registered in
 * META-INF/services; Spark picks it by name, as its built-in provider handles any
 * options too.
 */
public final class EnvConnectionProvider extends JdbcConnectionProvider {
  static final String NAME = "platform-env";

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public boolean canHandle(Driver driver, scala.collection.immutable.Map<String, String> options) {
    return option(options, EnvCredentials.OPTION) != null;
  }

  @Override
  public Connection getConnection(Driver driver,
      scala.collection.immutable.Map<String, String> options) {
    Properties props = new Properties();
    String user = option(options, "user");
    if (user != null) {
      props.setProperty("user", user);
    }
    props.setProperty("password",
        EnvCredentials.password(NAME, option(options, EnvCredentials.OPTION)));
    try {
      Connection conn = driver.connect(option(options, "url"), props);
      if (conn == null) {
        throw new IllegalArgumentException(NAME + ": the JDBC driver "
            + driver.getClass().getName() + " does not accept the URL");
      }
      return conn;
    } catch (SQLException e) {
      // The Scala signature declares no checked exception.
      throw new IllegalStateException(NAME + ": cannot connect as user " + user + ": "
          + e.getMessage(), e);
    }
  }

  @Override
  public boolean modifiesSecurityContext(Driver driver,
      scala.collection.immutable.Map<String, String> options) {
    return false;
  }

  // Spark hands over a case-insensitive map; look up by any case in case it does not.
  private static String option(scala.collection.immutable.Map<String, String> options,
      String key) {
    for (Map.Entry<String, String> e : CollectionConverters.asJava(options).entrySet()) {
      if (e.getKey().equalsIgnoreCase(key)) {
        return e.getValue();
      }
    }
    return null;
  }
}
