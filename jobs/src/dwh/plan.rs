//! What each change event becomes in the vault, as Spark SQL expressions: every event
//! is exploded into vault rows (one JSON object per target table row) that the sink's
//! vault write applies by kind. Parsing and validation are the change apply's
//! (`cdc::changes`), so both read Debezium's events alike.

use super::model::{self, Link, Parent, Satellite, SourceColumn};
use crate::cdc::changes::{self, ReplicaColumn};

/// The hash diff of a deletion (no attribute set hashes to it: those are JSON objects).
const DELETED: &str = "md5('<deleted>')";
/// Wall-clock source values keep their microseconds and get no zone (PostgreSQL's
/// TIMESTAMP); the job's Spark session runs in UTC, as Debezium's epoch values are.
const JSON_OPTIONS: &str = "map('timestampFormat', \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS\")";

/// An instant as text with its offset, for the TIMESTAMPTZ columns.
fn instant(expr: &str) -> String {
    format!("date_format({expr}, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX\")")
}

/// A source table with its columns, as the plan needs them.
pub struct Source {
    pub table: &'static str,
    pub columns: Vec<SourceColumn>,
    parsed: Vec<ReplicaColumn>,
}

impl Source {
    pub fn new(table: &'static str, columns: Vec<SourceColumn>) -> Self {
        let parsed = columns.iter().map(parsed).collect();
        Self {
            table,
            columns,
            parsed,
        }
    }

    fn column(&self, name: &str) -> &ReplicaColumn {
        self.parsed
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{}.{name} is not a source column", self.table))
    }

    /// A column of the row image `img` (`__img` or `__before`), as the typed column
    /// stage 4 extracted once (`typed_columns`), so later expressions stay small.
    fn value(&self, name: &str, img: &str) -> String {
        let _ = self.column(name);
        typed_name(self.table, img, name)
    }

    /// The images whose columns the vault rows read: the before image only where an
    /// update can move a link-owned row (an order line to another order or product).
    fn images(&self) -> &'static [&'static str] {
        match model::owner(self.table) {
            Some(Parent::Link(_)) => &["__img", "__before"],
            _ => &["__img"],
        }
    }

    /// A business key as hashed: text, trimmed, upper case.
    fn normalised(&self, name: &str, img: &str) -> String {
        format!("upper(trim(CAST({} AS STRING)))", self.value(name, img))
    }

    fn hub_hk(&self, name: &str, img: &str) -> String {
        format!("md5({})", self.normalised(name, img))
    }

    fn link_hk(&self, l: &Link, img: &str) -> String {
        let parts: Vec<String> = l
            .roles
            .iter()
            .map(|r| r.column)
            .chain(l.dependent)
            .map(|c| self.normalised(c, img))
            .collect();
        format!("md5(concat_ws('||', {}))", parts.join(", "))
    }

    /// True when every column of the link is in the image.
    fn link_complete(&self, l: &Link, img: &str) -> String {
        l.roles
            .iter()
            .map(|r| r.column)
            .chain(l.dependent)
            .map(|c| format!("{} IS NOT NULL", self.value(c, img)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn owner_hk(&self, parent: Parent, img: &str) -> String {
        match parent {
            Parent::Hub(h) => self.hub_hk(h.key, img),
            Parent::Link(l) => self.link_hk(l, img),
        }
    }

    fn sat_hk(&self, s: &Satellite, img: &str) -> String {
        match s.effectivity_of {
            Some(l) => self.hub_hk(l.roles[l.driving.unwrap_or(0)].column, img),
            None => self.owner_hk(s.parent, img),
        }
    }

    fn satellites(&self) -> Vec<Satellite> {
        model::satellites(self.table, &self.columns)
    }
}

fn typed_name(table: &str, img: &str, column: &str) -> String {
    format!("`{table}{img}__{column}`")
}

/// How the change apply's parser reads a PostgreSQL column.
fn parsed(c: &SourceColumn) -> ReplicaColumn {
    let data_type = match c.data_type.as_str() {
        "smallint" | "integer" => "int",
        "bigint" => "bigint",
        "numeric" => "decimal",
        "real" | "double precision" => "double",
        "timestamp without time zone" => "datetime",
        "date" => "date",
        "character varying" | "character" => "varchar",
        _ => "text",
    };
    ReplicaColumn {
        name: c.name.clone(),
        data_type: data_type.into(),
        nullable: c.nullable,
        primary_key: false,
        max_chars: c.max_chars.map(i64::from),
        precision: c.precision.map(i64::from),
        scale: c.scale.map(i64::from),
    }
}

fn element(kind: &str, target: &str, row: &str) -> String {
    format!("named_struct('__kind', '{kind}', '__target', '{target}', '__row', {row})")
}

const SKIP: &str = "array(named_struct('__kind', 'skip', '__target', CAST(NULL AS STRING), \
                    '__row', CAST(NULL AS STRING)))";

fn json(fields: &[(String, String)]) -> String {
    if fields.is_empty() {
        return "'{}'".into();
    }
    let args: Vec<String> = fields.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
    format!("to_json(named_struct({}), {JSON_OPTIONS})", args.join(", "))
}

fn f(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// The columns every satellite row starts with, but hk, hashdiff and is_deleted.
/// No `load_ts`: the sink's commit sets it (and `applied_ts` where Debezium gave no
/// time), so the plan holds no per-batch constant and its generated code is compiled
/// once per executor, not for every micro-batch (measured: 30-100 ms per task). Such
/// a plan needs the optimizer rule that `mod.rs` excludes kept out.
fn meta() -> Vec<(String, String)> {
    vec![
        f("seq", "offset"),
        f("applied_ts", instant("timestamp_micros(__ts)")),
        f("record_source", "topic"),
    ]
}

/// The vault rows of an insert, update or snapshot read of `src` (image `__img`).
fn upserts(src: &Source) -> Vec<String> {
    let img = "__img";
    let mut out = Vec::new();
    let mut hubs: Vec<(&str, &str)> = Vec::new();
    if let Some(h) = model::hub_of(src.table) {
        hubs.push((h.name, h.key));
    }
    for l in model::links_of(src.table) {
        for r in l.roles {
            if !hubs.contains(&(r.hub, r.column)) {
                hubs.push((r.hub, r.column));
            }
        }
    }
    for (name, column) in hubs {
        let h = model::hub(name);
        let row = json(&[
            f("hk", src.hub_hk(column, img)),
            f(h.key, src.value(column, img)),
            f("record_source", "topic"),
        ]);
        out.push(element(
            "hub",
            &format!("hub_{name}"),
            &format!(
                "CASE WHEN {} IS NOT NULL THEN {row} END",
                src.value(column, img)
            ),
        ));
    }
    for l in model::links_of(src.table) {
        let mut fields = vec![f("hk", src.link_hk(l, img))];
        for r in l.roles {
            fields.push(f(r.as_column, src.hub_hk(r.column, img)));
        }
        if let Some(d) = l.dependent {
            fields.push(f(d, src.value(d, img)));
        }
        fields.push(f("record_source", "topic"));
        out.push(element(
            "link",
            &format!("link_{}", l.name),
            &format!(
                "CASE WHEN {} THEN {} END",
                src.link_complete(l, img),
                json(&fields)
            ),
        ));
    }
    for s in src.satellites() {
        // The described values: the attributes, or which link is current.
        let attributes: Vec<(String, String)> = match s.effectivity_of {
            None => s
                .attributes
                .iter()
                .map(|c| f(&c.name, src.value(&c.name, img)))
                .collect(),
            Some(l) => vec![f(
                "link_hk",
                format!(
                    "CASE WHEN {} THEN {} END",
                    src.link_complete(l, img),
                    src.link_hk(l, img)
                ),
            )],
        };
        let mut fields = vec![f("hk", src.sat_hk(&s, img))];
        fields.extend(meta());
        fields.push(f("hashdiff", format!("md5({})", json(&attributes))));
        fields.push(f("is_deleted", "false"));
        fields.extend(attributes);
        out.push(element("sat", &s.name, &json(&fields)));
        // An order line moved to another order or product is another link: the old
        // one's satellite records that it ended.
        if let (None, Parent::Link(l)) = (s.effectivity_of, s.parent) {
            out.push(element(
                "sat",
                &s.name,
                &format!(
                    "CASE WHEN __dop = 'u' AND {} AND {} <> {} THEN {} END",
                    src.link_complete(l, "__before"),
                    src.link_hk(l, "__before"),
                    src.link_hk(l, img),
                    deleted_row(src, &s, "__before")
                ),
            ));
        }
    }
    out
}

fn deleted_row(src: &Source, s: &Satellite, img: &str) -> String {
    let mut fields = vec![f("hk", src.sat_hk(s, img))];
    fields.extend(meta());
    fields.push(f("hashdiff", DELETED));
    fields.push(f("is_deleted", "true"));
    json(&fields)
}

/// The vault rows of a delete (image `__img` is the old row).
fn deletes(src: &Source) -> Vec<String> {
    src.satellites()
        .iter()
        .map(|s| element("sat", &s.name, &deleted_row(src, s, "__img")))
        .collect()
}

/// A TRUNCATE: every live key of each satellite of the table is marked deleted.
fn truncates(src: &Source) -> Vec<String> {
    src.satellites()
        .iter()
        .map(|s| {
            let mut fields = meta();
            fields.push(f("hashdiff", DELETED));
            element("truncate", &s.name, &json(&fields))
        })
        .collect()
}

/// Stage 2 (after `cdc::changes::envelope_columns`): the operation, both row images,
/// the source commit time and the table the topic carries.
pub fn event_columns() -> Vec<String> {
    let mut cols = changes::image_columns();
    cols.extend([
        "try_variant_get(__doc, '$.before', 'variant') AS __before".to_string(),
        "try_variant_get(__doc, '$.source.ts_us', 'bigint') AS __ts".into(),
        "substring_index(topic, '.', -1) AS __table".into(),
    ]);
    cols
}

/// Why an event of `src` is quarantined, or NULL.
fn reason(src: &Source) -> String {
    let mut keyed = src.parsed.clone();
    for c in keyed.iter_mut() {
        let key = match model::owner(src.table) {
            Some(Parent::Hub(h)) => c.name == h.key,
            Some(Parent::Link(l)) => {
                l.roles.iter().any(|r| r.column == c.name) || l.dependent == Some(c.name.as_str())
            }
            None => false,
        };
        c.primary_key = key;
    }
    changes::reason(&keyed)
}

/// Stage 3: why an event is quarantined (NULL: it is loaded), over stage 2's columns.
pub fn reason_columns(sources: &[Source]) -> Vec<String> {
    let reasons: Vec<String> = sources
        .iter()
        .map(|s| format!("WHEN '{}' THEN {}", s.table, reason(s)))
        .collect();
    let reason = format!(
        "CASE WHEN __tombstone THEN NULL WHEN NOT __utf8 THEN 'not UTF-8' ELSE CASE __table {} \
         ELSE 'topic ' || topic || ' does not feed the vault' END END",
        reasons.join(" ")
    );
    [
        &format!("{reason} AS __reason"),
        "__raw",
        "topic",
        "partition",
        "offset",
        "__tombstone",
        "__dop",
        "__img",
        "__before",
        "__ts",
        "__table",
    ]
    .map(String::from)
    .to_vec()
}

/// Stage 4: every source column of each image, extracted and typed once (NULL on
/// events of other tables).
pub fn typed_columns(sources: &[Source]) -> Vec<String> {
    let mut cols: Vec<String> = [
        "__reason",
        "__raw",
        "topic",
        "partition",
        "offset",
        "__tombstone",
        "__dop",
        "__ts",
        "__table",
    ]
    .map(String::from)
    .to_vec();
    for s in sources {
        for img in s.images() {
            for c in &s.parsed {
                cols.push(format!(
                    "CASE WHEN __table = '{}' THEN {} END AS {}",
                    s.table,
                    c.extract_in(img),
                    typed_name(s.table, img, &c.name)
                ));
            }
        }
    }
    cols
}

/// Stage 5: the vault rows of each event (one skipped row for a tombstone or a
/// quarantined event, so its offset is still recorded).
pub fn target_columns(sources: &[Source]) -> Vec<String> {
    let targets: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "WHEN '{}' THEN CASE WHEN __dop IN ('c', 'u', 'r') THEN \
                 filter(array({}), x -> x.__row IS NOT NULL) \
                 WHEN __dop = 'd' THEN array({}) WHEN __dop = 't' THEN array({}) END",
                s.table,
                upserts(s).join(", "),
                deletes(s).join(", "),
                truncates(s).join(", ")
            )
        })
        .collect();
    vec![
        "__reason".into(),
        "CASE WHEN __reason IS NOT NULL THEN __raw END AS __raw".into(),
        "topic".into(),
        "partition".into(),
        "offset".into(),
        format!(
            "coalesce(CASE WHEN __tombstone OR __reason IS NOT NULL THEN {SKIP} \
             ELSE CASE __table {} END END, {SKIP}) AS __targets",
            targets.join(" ")
        ),
    ]
}

/// Stage 6: one row per vault row, what the sink's vault write reads.
pub fn sink_columns() -> Vec<String> {
    [
        "inline(__targets)",
        "__reason",
        "__raw",
        "topic",
        "partition",
        "offset",
    ]
    .map(String::from)
    .to_vec()
}
