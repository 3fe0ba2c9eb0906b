package platform.spark.sink;

import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** Reading the sink's options, with errors that name the option. */
final class Options {
  private Options() {
  }

  static String required(CaseInsensitiveStringMap options, String key) {
    String v = options.get(key);
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": option '" + key + "' is required");
    }
    return v;
  }

  static int positive(CaseInsensitiveStringMap options, String key, int fallback) {
    String v = options.get(key);
    if (v == null) {
      return fallback;
    }
    try {
      int n = Integer.parseInt(v.trim());
      if (n > 0) {
        return n;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new IllegalArgumentException(SinkConfig.WHO + ": option '" + key + "' must be a"
        + " positive integer, got '" + v + "'");
  }

  static long integer(CaseInsensitiveStringMap options, String key, long fallback) {
    String v = options.get(key);
    if (v == null) {
      return fallback;
    }
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": option '" + key + "' must be an"
          + " integer, got '" + v + "'", e);
    }
  }

  static boolean bool(CaseInsensitiveStringMap options, String key, boolean fallback) {
    String v = options.getOrDefault(key, String.valueOf(fallback)).trim();
    if (!v.equalsIgnoreCase("true") && !v.equalsIgnoreCase("false")) {
      throw new IllegalArgumentException(SinkConfig.WHO + ": option '" + key + "' must be true"
          + " or false, got '" + v + "'");
    }
    return Boolean.parseBoolean(v);
  }
}
