//! Debezium change events as Spark SQL expressions: the envelope parsed once
//! (VARIANT), each replica column extracted with the type MySQL stores, and every
//! event that cannot be applied given a reason instead of stopping the stream. Spark
//! 4's ANSI mode raises on a bad cast, so only `try_` functions touch event data.
//!
//! The columns come from the MySQL replica itself (information_schema), so a column
//! added to both databases flows without a code change, and a field the replica lacks
//! is named in `__unknown_columns` (the sink then stops that table's apply).

/// One column of a MySQL replica, as information_schema describes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplicaColumn {
    pub name: String,
    /// MySQL's DATA_TYPE (int, varchar, decimal, datetime, ...).
    pub data_type: String,
    pub nullable: bool,
    pub primary_key: bool,
    /// Characters, for text types.
    pub max_chars: Option<i64>,
    pub precision: Option<i64>,
    pub scale: Option<i64>,
}

/// Microseconds of 0001-01-01 and of 9999-12-31 23:59:59.999999 (DATETIME's range).
const MICROS_MIN: i64 = -62_135_596_800_000_000;
const MICROS_MAX: i64 = 253_402_300_799_999_999;
/// Debezium's `unavailable.value.placeholder` default.
pub const TOAST_PLACEHOLDER: &str = "__debezium_unavailable_value";
/// Days of 0001-01-01 and 9999-12-31 since 1970-01-01.
const DAYS_MIN: i64 = -719_162;
const DAYS_MAX: i64 = 2_932_896;

impl ReplicaColumn {
    /// The field's raw text, present whenever the event carries a non-null value.
    fn raw(&self) -> String {
        self.raw_in("__img")
    }

    /// The raw text of the field in the row image column `img`.
    pub fn raw_in(&self, img: &str) -> String {
        format!("try_variant_get({img}, '$.{}', 'string')", self.name)
    }

    /// The value as the Spark type the sink turns into MySQL's (NULL when absent or
    /// not of that type). Debezium is configured for decimals as text and timestamps
    /// as microseconds since the epoch (a wall clock, as PostgreSQL's TIMESTAMP is).
    pub fn extract(&self) -> String {
        self.extract_in("__img")
    }

    /// As `extract`, from the row image column `img` (`__before`: the old row).
    pub fn extract_in(&self, img: &str) -> String {
        let n = &self.name;
        match self.data_type.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                format!("try_variant_get({img}, '$.{n}', 'bigint')")
            }
            "decimal" | "numeric" => format!(
                "try_cast({} AS DECIMAL({}, {}))",
                self.raw_in(img),
                self.precision.unwrap_or(38).clamp(1, 38),
                self.scale.unwrap_or(0).clamp(0, 38)
            ),
            "double" | "float" | "real" => format!("try_variant_get({img}, '$.{n}', 'double')"),
            "datetime" | "timestamp" => format!(
                "CASE WHEN try_variant_get({img}, '$.{n}', 'bigint') BETWEEN {MICROS_MIN} AND \
                 {MICROS_MAX} THEN timestamp_micros(try_variant_get({img}, '$.{n}', 'bigint')) END"
            ),
            "date" => format!(
                "CASE WHEN try_variant_get({img}, '$.{n}', 'int') BETWEEN {DAYS_MIN} AND {DAYS_MAX} \
                 THEN date_from_unix_date(try_variant_get({img}, '$.{n}', 'int')) END"
            ),
            _ => self.raw_in(img),
        }
    }

    /// Why this column's value cannot be stored, for an insert or update; NULL if it can.
    fn problems(&self) -> Vec<String> {
        let n = &self.name;
        let mut whens = Vec::new();
        if !self.nullable {
            whens.push(format!(
                "WHEN {} IS NULL THEN 'missing column {n}'",
                self.raw()
            ));
        }
        whens.push(format!(
            "WHEN {} IS NOT NULL AND ({}) IS NULL THEN 'column {n}: not a valid {}'",
            self.raw(),
            self.extract(),
            self.data_type
        ));
        if self.is_text() {
            // What Debezium sends for an unchanged TOASTed value when the table's
            // REPLICA IDENTITY does not carry it: storing it would corrupt the row.
            whens.push(format!(
                "WHEN {} = '{TOAST_PLACEHOLDER}' THEN 'column {n}: unchanged large value not in \
                 the event (set REPLICA IDENTITY FULL on the source table)'",
                self.raw()
            ));
        }
        if let Some(max) = self.max_chars.filter(|_| self.is_text()) {
            whens.push(format!(
                "WHEN char_length({}) > {max} THEN 'column {n} longer than {max} characters'",
                self.raw()
            ));
        }
        whens
    }

    fn is_text(&self) -> bool {
        self.data_type.contains("char") || self.data_type.contains("text")
    }
}

/// Stage 1, over the Kafka source: the payload, its coordinates, the parsed document.
pub fn envelope_columns() -> Vec<String> {
    [
        "value AS __raw",
        "topic",
        "CAST(partition AS INT) AS partition",
        "offset",
        "value IS NULL AS __tombstone",
        "is_valid_utf8(CAST(value AS STRING)) AS __utf8",
        "CASE WHEN is_valid_utf8(CAST(value AS STRING)) \
         THEN try_parse_json(CAST(value AS STRING)) END AS __doc",
    ]
    .map(String::from)
    .to_vec()
}

/// Stage 2: the operation and the row image it carries (`before` for a delete).
pub fn image_columns() -> Vec<String> {
    [
        "__raw",
        "topic",
        "partition",
        "offset",
        "__tombstone",
        "__utf8",
        "__doc",
        "try_variant_get(__doc, '$.op', 'string') AS __dop",
        "CASE WHEN try_variant_get(__doc, '$.op', 'string') = 'd' \
         THEN try_variant_get(__doc, '$.before', 'variant') \
         ELSE try_variant_get(__doc, '$.after', 'variant') END AS __img",
    ]
    .map(String::from)
    .to_vec()
}

/// Stage 3: what the sink reads (its replica write's control columns, then one column
/// per replica column).
pub fn sink_columns(columns: &[ReplicaColumn], ignored: &[String]) -> Vec<String> {
    let mut out = vec![
        "CASE WHEN __tombstone THEN 'tombstone' WHEN __dop = 'd' THEN 'delete' \
         WHEN __dop = 't' THEN 'truncate' ELSE 'upsert' END AS __op"
            .to_string(),
        format!("{} AS __reason", reason(columns)),
        "__raw".into(),
        format!("{} AS __unknown_columns", unknown_columns(columns, ignored)),
        "topic".into(),
        "partition".into(),
        "offset".into(),
    ];
    out.extend(
        columns
            .iter()
            .map(|c| format!("{} AS `{}`", c.extract(), c.name)),
    );
    out
}

/// Fields of an insert's or update's row image that the replica has no column for,
/// but those `ignored` (dropped from the source since: old events still carry them).
fn unknown_columns(columns: &[ReplicaColumn], ignored: &[String]) -> String {
    let known: Vec<String> = columns
        .iter()
        .map(|c| c.name.as_str())
        .chain(ignored.iter().map(String::as_str))
        .map(|c| format!("'{}'", c.replace('\'', "")))
        .collect();
    format!(
        "CASE WHEN NOT __tombstone AND __dop IN ('c', 'u', 'r') AND __img IS NOT NULL THEN \
         nullif(array_join(array_sort(array_except(json_object_keys(to_json(__img)), array({}))), \
         ', '), '') END",
        known.join(", ")
    )
}

/// Why an event is quarantined, or NULL: not a change event, an operation the job
/// does not apply, no key, or a value the replica cannot store.
pub fn reason(columns: &[ReplicaColumn]) -> String {
    let mut whens = vec![
        "WHEN __tombstone THEN NULL".to_string(),
        "WHEN NOT __utf8 THEN 'not UTF-8'".into(),
        "WHEN __doc IS NULL THEN 'not JSON'".into(),
        "WHEN __dop IS NULL THEN 'no op field: not a Debezium change event'".into(),
        "WHEN __dop NOT IN ('c', 'u', 'r', 'd', 't') THEN 'operation ' || __dop || ' is not applied'"
            .into(),
        "WHEN __dop = 't' THEN NULL".into(),
        "WHEN __img IS NULL OR schema_of_variant(__img) NOT LIKE 'OBJECT%' \
         THEN 'no row image (before/after)'"
            .into(),
    ];
    for key in columns.iter().filter(|c| c.primary_key) {
        whens.push(format!(
            "WHEN {} IS NULL THEN 'missing key column {}'",
            key.raw(),
            key.name
        ));
        whens.push(format!(
            "WHEN ({}) IS NULL THEN 'key column {}: not a valid {}'",
            key.extract(),
            key.name,
            key.data_type
        ));
    }
    let row: Vec<String> = columns.iter().flat_map(ReplicaColumn::problems).collect();
    format!(
        "CASE {} WHEN __dop = 'd' THEN NULL {} ELSE NULL END",
        whens.join(" "),
        row.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, nullable: bool, pk: bool) -> ReplicaColumn {
        ReplicaColumn {
            name: name.into(),
            data_type: ty.into(),
            nullable,
            primary_key: pk,
            max_chars: (ty == "varchar").then_some(50),
            precision: (ty == "decimal").then_some(12),
            scale: (ty == "decimal").then_some(2),
        }
    }

    #[test]
    fn each_type_is_extracted_without_a_failing_cast() {
        assert_eq!(
            col("id", "int", false, true).extract(),
            "try_variant_get(__img, '$.id', 'bigint')"
        );
        assert_eq!(
            col("price", "decimal", false, false).extract(),
            "try_cast(try_variant_get(__img, '$.price', 'string') AS DECIMAL(12, 2))"
        );
        assert!(
            col("at", "datetime", false, false)
                .extract()
                .contains("timestamp_micros")
        );
        for c in [
            col("id", "int", false, true),
            col("at", "datetime", true, false),
        ] {
            assert!(!c.extract().contains("CAST("), "{}", c.extract());
        }
    }

    #[test]
    fn ignored_columns_count_as_known() {
        let cols = [col("id", "int", false, true)];
        assert!(unknown_columns(&cols, &["old".into()]).contains("array('id', 'old')"));
    }

    #[test]
    fn deletes_are_checked_for_their_key_only() {
        let cols = [
            col("id", "int", false, true),
            col("name", "varchar", false, false),
        ];
        let r = reason(&cols);
        let delete_at = r.find("WHEN __dop = 'd' THEN NULL").expect("delete branch");
        assert!(r.find("missing key column id").expect("key check") < delete_at);
        assert!(r.find("missing column name").expect("row check") > delete_at);
        assert!(r.contains("name longer than 50 characters"));
    }

    #[test]
    fn the_sink_gets_its_control_columns_then_the_replica_columns() {
        let cols = [
            col("id", "int", false, true),
            col("name", "varchar", false, false),
        ];
        let names: Vec<String> = sink_columns(&cols, &[])
            .iter()
            .map(|e| e.rsplit(" AS ").next().unwrap_or(e).to_string())
            .collect();
        assert_eq!(
            names,
            [
                "__op",
                "__reason",
                "__raw",
                "__unknown_columns",
                "topic",
                "partition",
                "offset",
                "`id`",
                "`name`"
            ]
        );
    }
}
