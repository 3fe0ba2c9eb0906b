package platform.spark.sink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SinkTablesTest {

  @Test
  void javaDdlIsSchemaSqlsDdl() throws Exception {
    // createTables must create what a deployment's init creates, statement for statement.
    assertEquals(SinkTables.DDL, PgTestDb.sinkStatements(PgTestDb.schemaSql()));
  }

  @Test
  void stagingNamesFitPostgresIdentifiersAndShareTheSinkPrefix() {
    String longest = SinkTables.stageName("users-stream", -1, -1L);
    assertEquals(61, longest.length());
    assertTrue(longest.startsWith(SinkTables.stagePrefix("users-stream")));
    assertTrue(longest.matches("stream_stage_[0-9a-f]{16}_[0-9]+_[0-9]+"), longest);
    assertEquals(SinkTables.stagePrefix("a") + "3_17", SinkTables.stageName("a", 3, 17));
    assertTrue(!SinkTables.stagePrefix("a").equals(SinkTables.stagePrefix("b")));
  }
}
