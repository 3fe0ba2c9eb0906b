//! Parsing and validation of the registration events, as Spark SQL expressions.
//! Spark 4 runs in ANSI mode, where a bad cast raises instead of yielding NULL, so
//! nothing here relies on casts failing softly: JSON goes through `try_parse_json`
//! (VARIANT), each field's JSON type is checked with `schema_of_variant`, and the
//! timestamp with `try_cast`.

/// The event's fields with the longest value the `users` table accepts.
pub const FIELDS: [(&str, usize); 6] = [
    ("first_name", 50),
    ("last_name", 50),
    ("email", 100),
    ("phone", 20),
    ("registration_date", 64),
    ("loyalty_status", 10),
];

pub const LOYALTY_STATUSES: [&str; 3] = ["Gold", "Silver", "Bronze"];

/// E-mail shape: one `@`, no blanks, a dotted domain with a 2+ letter TLD.
pub const EMAIL_PATTERN: &str = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$";

/// How far in the future a registration date may lie (clock skew of producers).
pub const FUTURE_TOLERANCE: &str = "INTERVAL 5 MINUTES";

/// Stage 1, over the Kafka source: the payload as text and its Kafka coordinates.
pub fn raw_columns() -> Vec<String> {
    vec![
        "CAST(value AS STRING) AS raw".into(),
        "topic".into(),
        "CAST(partition AS INT) AS partition".into(),
        "offset".into(),
    ]
}

/// Stage 2: the parsed document, each field's text and JSON type.
pub fn parsed_columns() -> Vec<String> {
    let mut cols = vec![
        "raw".into(),
        "topic".into(),
        "partition".into(),
        "offset".into(),
        "try_parse_json(raw) AS doc".into(),
    ];
    for (f, _) in FIELDS {
        cols.push(format!(
            "try_variant_get(try_parse_json(raw), '$.{f}', 'string') AS {f}"
        ));
        cols.push(format!(
            "schema_of_variant(variant_get(try_parse_json(raw), '$.{f}')) AS {f}__type"
        ));
    }
    cols
}

/// The first problem of an event, or NULL when it is valid.
pub fn reason_expression() -> String {
    let mut whens = vec![
        "WHEN raw IS NULL THEN 'empty message'".to_string(),
        "WHEN doc IS NULL THEN 'malformed JSON'".to_string(),
        "WHEN schema_of_variant(doc) NOT LIKE 'OBJECT<%' THEN 'not a JSON object'".to_string(),
    ];
    for (f, _) in FIELDS {
        whens.push(format!(
            "WHEN {f}__type IS NULL OR {f}__type = 'VOID' THEN 'missing field {f}'"
        ));
    }
    for (f, _) in FIELDS {
        whens.push(format!(
            "WHEN {f}__type <> 'STRING' THEN '{f} must be a string, not ' || lower({f}__type)"
        ));
    }
    for (f, _) in FIELDS {
        whens.push(format!("WHEN trim({f}) = '' THEN '{f} is empty'"));
    }
    for (f, max) in FIELDS {
        whens.push(format!(
            "WHEN char_length({f}) > {max} THEN '{f} longer than {max} characters'"
        ));
    }
    let statuses = LOYALTY_STATUSES
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
        "WHEN try_cast(registration_date AS TIMESTAMP) IS NULL \
         THEN 'registration_date is not an ISO 8601 timestamp'"
            .to_string(),
    );
    whens.push(format!(
        "WHEN try_cast(registration_date AS TIMESTAMP) > current_timestamp() + {FUTURE_TOLERANCE} \
         THEN 'registration_date lies in the future'"
    ));
    format!("CASE {} ELSE NULL END AS reason", whens.join(" "))
}

/// Stage 3: what the sink takes (see infra/spark/sink/README.md).
pub fn sink_columns() -> Vec<String> {
    vec![
        reason_expression(),
        "first_name".into(),
        "last_name".into(),
        "email".into(),
        "phone".into(),
        "try_cast(registration_date AS TIMESTAMP) AS registration_date".into(),
        "loyalty_status".into(),
        "coalesce(raw, '') AS raw".into(),
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
        let r = reason_expression();
        for (f, max) in FIELDS {
            assert!(r.contains(&format!("'missing field {f}'")));
            assert!(r.contains(&format!("WHEN {f}__type <> 'STRING'")));
            assert!(r.contains(&format!("char_length({f}) > {max}")));
        }
        assert!(r.contains("'Gold', 'Silver', 'Bronze'"));
        // Backslashes are doubled for the SQL string literal.
        assert!(r.contains(r"[^@\\s]+"));
    }
}
