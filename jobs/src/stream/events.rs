//! Parsing and validation of the registration events, as Spark SQL expressions.
//! Spark 4 runs in ANSI mode, where a bad cast raises instead of yielding NULL, so
//! nothing here relies on casts failing softly: JSON goes through `try_parse_json`
//! (VARIANT), each field's JSON type is checked with `schema_of_variant`, and the
//! timestamp with `try_cast`.
//!
//! Every Kafka record becomes exactly one row for the sink, valid or not: a payload
//! that is too big, not UTF-8 or not an event is never dropped and never stops the
//! stream; it goes to the quarantine with its reason and its original bytes.

use common::schema;

/// Longest accepted text of a registration date (the column is a timestamp).
pub const DATE_TEXT_MAX: usize = 64;

/// The event's fields (the `users` columns but its key, from `common::schema`), each
/// with the longest value it may have: the column's length, the date's text length.
pub fn fields() -> Vec<(&'static str, usize)> {
    schema::event_fields()
        .map(|c| (c.name, c.max_len.unwrap_or(DATE_TEXT_MAX)))
        .collect()
}

/// E-mail shape: one `@`, no blanks, a dotted domain with a 2+ letter TLD.
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$";

/// How far in the future a registration date may lie (clock skew of producers).
pub const FUTURE_TOLERANCE: &str = "INTERVAL 5 MINUTES";

/// The earliest plausible registration date.
pub const EARLIEST_DATE: &str = "1900-01-01";

/// Bytes of an oversized payload kept in the quarantine, to recognise it by (the
/// whole payload stays in Kafka until its retention ends).
pub const OVERSIZE_KEPT_BYTES: usize = 1024;

/// Stage 1, over the Kafka source: the payload, as text only when it is small enough
/// to be an event, and its Kafka coordinates.
pub fn raw_columns(max_event_bytes: usize) -> Vec<String> {
    vec![
        "value".into(),
        "CAST(length(value) AS BIGINT) AS payload_bytes".into(),
        format!(
            "CASE WHEN length(value) <= {max_event_bytes} THEN CAST(value AS STRING) END AS raw"
        ),
        "topic".into(),
        "CAST(partition AS INT) AS partition".into(),
        "offset".into(),
    ]
}

/// Stage 2: the parsed document, once per event (only for UTF-8 text).
pub fn document_columns() -> Vec<String> {
    vec![
        "value".into(),
        "payload_bytes".into(),
        "raw".into(),
        "is_valid_utf8(raw) AS utf8".into(),
        "topic".into(),
        "partition".into(),
        "offset".into(),
        "CASE WHEN is_valid_utf8(raw) THEN try_parse_json(raw) END AS doc".into(),
    ]
}

/// The JSON shape of a usual event: `schema_of_variant` of the whole object, whose
/// fields it lists sorted by name. One string per event instead of one per field.
pub fn expected_shape() -> String {
    let mut names: Vec<&str> = fields().into_iter().map(|(f, _)| f).collect();
    names.sort_unstable();
    let fields: Vec<String> = names.iter().map(|f| format!("{f}: STRING")).collect();
    format!("OBJECT<{}>", fields.join(", "))
}

/// Stage 3: the object's shape, each field's text, the parsed date.
pub fn field_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "value",
        "payload_bytes",
        "raw",
        "utf8",
        "topic",
        "partition",
        "offset",
        "doc",
    ]
    .map(String::from)
    .to_vec();
    cols.push("schema_of_variant(doc) AS shape".into());
    for (f, _) in fields() {
        cols.push(format!("try_variant_get(doc, '$.{f}', 'string') AS {f}"));
    }
    cols.push("try_cast(try_variant_get(doc, '$.registration_date', 'string') AS TIMESTAMP) AS registered".into());
    cols
}

/// Why the JSON is not an object with the six fields as strings, or NULL. Evaluated
/// only for events whose shape is not exactly the usual one (extra fields are fine).
fn structure_reason() -> String {
    let mut whens = vec!["WHEN shape NOT LIKE 'OBJECT<%' THEN 'not a JSON object'".to_string()];
    let ty = |f: &str| format!("schema_of_variant(variant_get(doc, '$.{f}'))");
    for (f, _) in fields() {
        whens.push(format!(
            "WHEN {0} IS NULL OR {0} = 'VOID' THEN 'missing field {f}'",
            ty(f)
        ));
    }
    for (f, _) in fields() {
        whens.push(format!(
            "WHEN {0} <> 'STRING' THEN '{f} must be a string, not ' || lower({0})",
            ty(f)
        ));
    }
    format!(
        "CASE WHEN shape = '{}' THEN NULL {} ELSE NULL END",
        expected_shape(),
        whens.join(" ")
    )
}

/// The first problem of an event, or NULL when it is valid. Checks run cheapest and
/// most basic first, and stop at the first that fails (`coalesce` is lazy).
pub fn reason_expression(max_event_bytes: usize) -> String {
    let payload = format!(
        "CASE WHEN value IS NULL THEN 'empty message' \
         WHEN payload_bytes > {max_event_bytes} THEN 'payload of ' || payload_bytes || \
         ' bytes is over the limit of {max_event_bytes} bytes' \
         WHEN NOT utf8 THEN 'payload is not valid UTF-8' \
         WHEN doc IS NULL THEN 'malformed JSON' END"
    );
    let mut whens = Vec::new();
    for (f, _) in fields() {
        whens.push(format!("WHEN trim({f}) = '' THEN '{f} is empty'"));
    }
    // No NUL check here: the sink refuses a NUL in any text column of users itself,
    // with the same reason, in one pass over the bytes. Spark's instr calls a
    // comparison at every position: these scans took 18% of the executors' samples.
    // Characters are never more than bytes: octet_length is free, char_length counts.
    for (f, max) in fields() {
        whens.push(format!(
            "WHEN octet_length({f}) > {max} AND char_length({f}) > {max} \
             THEN '{f} longer than {max} characters'"
        ));
    }
    let statuses = schema::LOYALTY_STATUSES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    whens.push(format!(
        "WHEN NOT regexp_like(email, '{}') THEN 'malformed e-mail'",
        EMAIL_PATTERN.replace('\\', "\\\\")
    ));
    whens.push(format!(
        "WHEN loyalty_status NOT IN ({statuses}) THEN 'unknown loyalty status'"
    ));
    whens.push(
        "WHEN registered IS NULL THEN 'registration_date is not an ISO 8601 timestamp'".to_string(),
    );
    whens.push(format!(
        "WHEN registered < TIMESTAMP '{EARLIEST_DATE} 00:00:00' \
         THEN 'registration_date before {EARLIEST_DATE}'"
    ));
    whens.push(format!(
        "WHEN registered > current_timestamp() + {FUTURE_TOLERANCE} \
         THEN 'registration_date lies in the future'"
    ));
    format!(
        "coalesce({payload}, {}, CASE {} END) AS reason",
        structure_reason(),
        whens.join(" ")
    )
}

/// Stage 4: what the sink takes (see infra/spark/sink/README.md). `raw` is the
/// payload as text where PostgreSQL TEXT holds it exactly; otherwise `raw_bytes`
/// carries the original bytes (a prefix of an oversized payload). A payload that
/// parsed as JSON has no NUL byte (JSON has no place for one unescaped), so only the
/// others are scanned; the sink checks `raw` again before storing it as text.
pub fn sink_columns(max_event_bytes: usize) -> Vec<String> {
    let exact_text = "raw IS NOT NULL AND utf8 AND (doc IS NOT NULL OR instr(raw, char(0)) = 0)";
    vec![
        reason_expression(max_event_bytes),
        "first_name".into(),
        "last_name".into(),
        "email".into(),
        "phone".into(),
        "registered AS registration_date".into(),
        "loyalty_status".into(),
        format!("CASE WHEN {exact_text} THEN raw END AS raw"),
        format!(
            "CASE WHEN value IS NOT NULL AND NOT ({exact_text}) THEN \
             CASE WHEN payload_bytes > {max_event_bytes} THEN substring(value, 1, {OVERSIZE_KEPT_BYTES}) \
             ELSE value END END AS raw_bytes"
        ),
        "topic".into(),
        "partition".into(),
        "offset".into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_checked_for_presence_type_and_length() {
        let r = reason_expression(65536);
        for (f, max) in fields() {
            assert!(r.contains(&format!("'missing field {f}'")));
            assert!(r.contains(&format!("'{f} must be a string, not '")));
            assert!(r.contains(&format!(
                "octet_length({f}) > {max} AND char_length({f}) > {max}"
            )));
        }
        assert!(r.contains("'Gold', 'Silver', 'Bronze'"));
        // Backslashes are doubled for the SQL string literal.
        assert!(r.contains(r"[^@\\s]+"));
        // The payload checks come before anything that needs the text.
        let size = r.find("over the limit").expect("size check");
        let utf8 = r.find("not valid UTF-8").expect("utf8 check");
        let json = r.find("malformed JSON").expect("json check");
        let shape = r.find("not a JSON object").expect("shape check");
        assert!(size < utf8 && utf8 < json && json < shape);
    }

    #[test]
    fn the_usual_shape_lists_the_fields_sorted() {
        assert_eq!(
            expected_shape(),
            "OBJECT<email: STRING, first_name: STRING, last_name: STRING, \
             loyalty_status: STRING, phone: STRING, registration_date: STRING>"
        );
    }
}
