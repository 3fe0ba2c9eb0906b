package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.junit.jupiter.api.Test;

/** Option validation, on the driver, before anything connects. */
class SinkConfigTest {
  private static final String URL = "jdbc:postgresql://db.internal:5432/platform?currentSchema=s";

  private static Map<String, String> options(String... extra) {
    Map<String, String> o = new HashMap<>(Map.of("url", URL, "user", "finals_user",
        "sinkId", "users-stream", "passwordEnv", "POSTGRES_PASSWORD"));
    for (int i = 0; i < extra.length; i += 2) {
      if (extra[i + 1] == null) {
        o.remove(extra[i]);
      } else {
        o.put(extra[i], extra[i + 1]);
      }
    }
    return o;
  }

  private static SinkConfig config(String... extra) {
    return SinkConfig.from(new CaseInsensitiveStringMap(options(extra)), SinkConfig.INPUT_SCHEMA,
        "UTC");
  }

  private static String error(String... extra) {
    return assertThrows(IllegalArgumentException.class, () -> config(extra)).getMessage();
  }

  @Test
  void defaults() {
    SinkConfig c = config();
    assertEquals(30_000, c.lockTimeoutMs);
    assertEquals(300, c.target.socketTimeoutSeconds);
    assertEquals(10, c.target.connectTimeoutSeconds);
    assertEquals(SinkConfig.Mode.EXACTLY_ONCE, c.mode);
    assertTrue(c.createTables);
    assertEquals(SinkConfig.Mode.APPEND, config("MODE", "Append").mode);
  }

  @Test
  void aPasswordOptionIsRefused() {
    String e = error("password", "s3cret-value");
    assertTrue(e.startsWith("pg-exactly-once: option 'password' is refused"), e);
    assertTrue(e.contains("passwordEnv"), e);
    assertFalse(e.contains("s3cret-value"), e);
    assertTrue(error("PASSWORD", "x").contains("is refused"));
  }

  @Test
  void passwordEnvMustNameAVariableAndIsNeverEchoed() {
    // A password put in passwordEnv by mistake must not end up in a log.
    String e = error("passwordEnv", "finals_pass");
    assertTrue(e.contains("must be the name of an environment variable matching"), e);
    assertFalse(e.contains("finals_pass"), e);
    assertTrue(error("passwordEnv", "PATH").contains("_PASSWORD$"));
  }

  @Test
  void aMissingVariableIsNamedWhenConnecting() {
    SinkConfig c = config("passwordEnv", "PG_SINK_TEST_UNSET_PASSWORD");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::connect);
    assertEquals("pg-exactly-once: environment variable PG_SINK_TEST_UNSET_PASSWORD (option"
        + " 'passwordEnv') is not set or is empty in this process; set it in the environment"
        + " of the Spark Connect server and of the Spark workers", e.getMessage());
  }

  @Test
  void requiredAndMistypedOptions() {
    assertEquals("pg-exactly-once: option 'sinkId' is required", error("sinkId", null));
    assertEquals("pg-exactly-once: option 'user' is required", error("user", " "));
    assertTrue(error("url", "jdbc:mysql://x/y").contains("must be a jdbc:postgresql: URL"));
    assertEquals("pg-exactly-once: option 'lockTimeoutMs' must be a positive integer, got '0'",
        error("lockTimeoutMs", "0"));
    assertTrue(error("socketTimeoutSeconds", "ten").contains("positive integer"));
    assertTrue(error("mode", "upsert").contains("must be exactly-once (the default) or append"));
    assertTrue(error("createTables", "yes").contains("must be true or false"));
  }

  @Test
  void toStringShowsNeitherUrlNorCredentials() {
    String s = config().toString();
    assertFalse(s.contains("db.internal") || s.contains("jdbc:"), s);
    assertEquals("sinkId=users-stream, user=finals_user, passwordEnv=POSTGRES_PASSWORD,"
        + " mode=exactly-once, lockTimeoutMs=30000", s);
  }

  @Test
  void wrongInputSchemaFailsUpFront() {
    StructType bad = new StructType().add("email", DataTypes.StringType)
        .add("offset", DataTypes.StringType);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> SinkConfig.from(new CaseInsensitiveStringMap(options()), bad, "UTC"));
    assertTrue(e.getMessage().contains("missing column reason"), e.getMessage());
    assertTrue(e.getMessage().contains("missing column raw_bytes"), e.getMessage());
    assertTrue(e.getMessage().contains("column offset is string, expected bigint"));
  }
}
