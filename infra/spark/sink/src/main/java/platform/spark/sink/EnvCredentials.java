package platform.spark.sink;

import java.util.regex.Pattern;

/**
 * Passwords come from an environment variable of the Spark process that connects (the
 * Connect server for the driver, the workers' environment for the executors); options
 * only carry the variable's name, so no password ever shows in a Spark plan or UI.
 */
final class EnvCredentials {
  static final String OPTION = "passwordEnv";
  private static final Pattern NAME = Pattern.compile("^[A-Z_][A-Z0-9_]*_PASSWORD$");

  private EnvCredentials() {
  }

  /**
   * Checks that the option holds a variable name. The value is never echoed: a value
   * that is not a name may well be a password put there by mistake.
   */
  static String checkName(String who, String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(who + ": option '" + OPTION + "' must be the name of"
          + " an environment variable matching " + NAME.pattern()
          + " (the value given is not shown, in case it is a password)");
    }
    return name;
  }

  /** The password in the named variable of this process. */
  static String password(String who, String name) {
    String value = System.getenv(checkName(who, name));
    if (value == null || value.isEmpty()) {
      throw new IllegalArgumentException(who + ": environment variable " + name
          + " (option '" + OPTION + "') is not set or is empty in this process; set it in the"
          + " environment of the Spark Connect server and of the Spark workers");
    }
    return value;
  }
}
