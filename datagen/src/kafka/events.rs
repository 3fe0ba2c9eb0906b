//! The events: JSON objects with `first_name`, `last_name`, `email`, `phone`,
//! `registration_date` (ISO 8601, UTC) and `loyalty_status` (Gold, Silver, Bronze).
//!
//! Valid events fit the `users` columns (names up to 50 characters, e-mail up to 100,
//! phone up to 20) and their e-mails are unique: they carry a per-run tag and a
//! sequence number. Every message has a header [`KIND_HEADER`] naming its
//! [`EventKind`], so tests can check what a downstream validator decided.

use chrono::{DateTime, Utc};
use common::schema::{self, LOYALTY_STATUSES};
use fake::Fake;
use fake::faker::name::en::{FirstName, LastName};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// Header carrying the event's kind (`valid` or one of the malformed kinds).
pub const KIND_HEADER: &str = "datagen-kind";

/// The fields of a valid event, in order: the `users` columns but its key.
pub fn fields() -> Vec<&'static str> {
    schema::event_fields().map(|c| c.name).collect()
}

/// What an event is. Every malformed kind breaks exactly one rule, so a validator
/// can tell them apart by the reason it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A well-formed event that fits the `users` table.
    Valid,
    /// Not JSON at all: a valid event's text cut off before its end (no closing brace).
    BrokenJson,
    /// Valid JSON with one of the six fields left out.
    MissingField,
    /// `email` is a string without an `@` (`first.last.tag.at.example.com`).
    BadEmail,
    /// `loyalty_status` is a string outside Gold/Silver/Bronze (e.g. `Platinum`).
    UnknownLoyalty,
    /// One string longer than its column: `first_name`/`last_name` over 50 characters,
    /// `email` over 100 (still a well-formed address) or `phone` over 20.
    Oversize,
    /// One field has a JSON type other than string: a number, boolean, array or object.
    WrongType,
}

impl EventKind {
    pub const MALFORMED: [EventKind; 6] = [
        EventKind::BrokenJson,
        EventKind::MissingField,
        EventKind::BadEmail,
        EventKind::UnknownLoyalty,
        EventKind::Oversize,
        EventKind::WrongType,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Valid => "valid",
            EventKind::BrokenJson => "broken_json",
            EventKind::MissingField => "missing_field",
            EventKind::BadEmail => "bad_email",
            EventKind::UnknownLoyalty => "unknown_loyalty",
            EventKind::Oversize => "oversize",
            EventKind::WrongType => "wrong_type",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        std::iter::once(EventKind::Valid)
            .chain(EventKind::MALFORMED)
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub payload: Vec<u8>,
}

pub struct EventGen {
    rng: ChaCha8Rng,
    tag: String,
    seq: u64,
    bad_ratio: f64,
}

const UNKNOWN_LOYALTY: [&str; 4] = ["Platinum", "Diamond", "None", "VIP"];
const DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

fn email_part(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(30)
        .collect::<String>()
        .to_ascii_lowercase()
}

impl EventGen {
    /// `seed` drives the content; `tag` goes into every e-mail so that different runs
    /// never produce the same address.
    pub fn new(seed: u64, tag: impl Into<String>, bad_ratio: f64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            tag: tag.into(),
            seq: 0,
            bad_ratio: bad_ratio.clamp(0.0, 1.0),
        }
    }

    /// A generator for one run: the content from `seed` (default: the clock), the
    /// e-mails' tag from the clock, so e-mails stay unique across runs even when a
    /// seed is repeated (the stream would quarantine a repeated address).
    pub fn for_run(seed: Option<u64>, bad_ratio: f64) -> Self {
        let now = Utc::now();
        let nanos = now.timestamp_nanos_opt().unwrap_or_default() as u64;
        Self::new(
            seed.unwrap_or(nanos),
            format!("{:x}", now.timestamp_millis()),
            bad_ratio,
        )
    }

    pub fn next_event(&mut self, now: DateTime<Utc>) -> Event {
        let kind = if self.bad_ratio > 0.0 && self.rng.random_bool(self.bad_ratio) {
            EventKind::MALFORMED[self.rng.random_range(0..EventKind::MALFORMED.len())]
        } else {
            EventKind::Valid
        };
        self.event_of(kind, now)
    }

    fn valid_fields(&mut self, now: DateTime<Utc>) -> Map<String, Value> {
        self.seq += 1;
        let rng = &mut self.rng;
        let first: String = FirstName().fake_with_rng(rng);
        let last: String = LastName().fake_with_rng(rng);
        let email = format!(
            "{}.{}.{}{}@{}",
            email_part(&first),
            email_part(&last),
            self.tag,
            self.seq,
            DOMAINS[rng.random_range(0..DOMAINS.len())]
        );
        let phone = format!(
            "+1-{}-{:03}-{:04}",
            rng.random_range(201..990),
            rng.random_range(0..1000),
            rng.random_range(0..10000)
        );
        let mut m = Map::new();
        m.insert("first_name".into(), Value::String(first));
        m.insert("last_name".into(), Value::String(last));
        m.insert("email".into(), Value::String(email));
        m.insert("phone".into(), Value::String(phone));
        m.insert(
            "registration_date".into(),
            Value::String(now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        m.insert(
            "loyalty_status".into(),
            Value::String(
                LOYALTY_STATUSES[rng.random_range(0..LOYALTY_STATUSES.len())].to_string(),
            ),
        );
        m
    }

    /// An event of the given kind (see [`EventKind`] for what each kind breaks).
    pub fn event_of(&mut self, kind: EventKind, now: DateTime<Utc>) -> Event {
        let mut m = self.valid_fields(now);
        let rng = &mut self.rng;
        match kind {
            EventKind::Valid => {}
            EventKind::BrokenJson => {
                let text = Value::Object(m).to_string();
                let cut = rng.random_range(1..text.len() - 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                return Event {
                    kind,
                    payload: text.as_bytes()[..cut].to_vec(),
                };
            }
            EventKind::MissingField => {
                let fields = fields();
                m.remove(fields[rng.random_range(0..fields.len())]);
            }
            EventKind::BadEmail => {
                let email = m["email"].as_str().unwrap_or_default().replace('@', ".at.");
                m.insert("email".into(), Value::String(email));
            }
            EventKind::UnknownLoyalty => {
                let s = UNKNOWN_LOYALTY[rng.random_range(0..UNKNOWN_LOYALTY.len())];
                m.insert("loyalty_status".into(), Value::String(s.into()));
            }
            EventKind::Oversize => {
                let field = ["first_name", "last_name", "email", "phone"][rng.random_range(0..4)];
                // Longer than the column allows, by 1 to 3 times its length.
                let max = schema::column("users", field)
                    .max_len
                    .expect("a VARCHAR column of users");
                let len = rng.random_range(max + 1..max * 3);
                let value = match field {
                    "email" => {
                        let domain = "@example.com";
                        format!("{}{domain}", "x".repeat(len - domain.len()))
                    }
                    "phone" => "5".repeat(len),
                    _ => "A".repeat(len),
                };
                m.insert(field.into(), Value::String(value));
            }
            EventKind::WrongType => {
                let fields = fields();
                let field = fields[rng.random_range(0..fields.len())];
                let value = match rng.random_range(0..4) {
                    0 => json!(rng.random_range(1_000_000_000u64..10_000_000_000)),
                    1 => json!(true),
                    2 => json!(["Gold"]),
                    _ => json!({ "value": "x" }),
                };
                m.insert(field.into(), value);
            }
        }
        Event {
            kind,
            payload: Value::Object(m).to_string().into_bytes(),
        }
    }
}

/// The reference validator the stream is expected to agree with: [`EventKind::Valid`]
/// for a valid event, otherwise the malformed kind it recognises (checked in the order
/// JSON, fields present, types, lengths, e-mail, loyalty status).
pub fn classify(payload: &[u8]) -> EventKind {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(payload) else {
        return EventKind::BrokenJson;
    };
    let fields = fields();
    let mut strs = Vec::with_capacity(fields.len());
    for f in fields {
        match m.get(f) {
            None => return EventKind::MissingField,
            Some(Value::String(s)) => strs.push(s.as_str()),
            Some(_) => return EventKind::WrongType,
        }
    }
    let [first, last, email, phone, date, loyalty] = strs[..] else {
        return EventKind::MissingField;
    };
    let too_long = |field: &str, value: &str| {
        schema::column("users", field)
            .max_len
            .is_some_and(|max| value.chars().count() > max)
    };
    if too_long("first_name", first)
        || too_long("last_name", last)
        || too_long("email", email)
        || too_long("phone", phone)
    {
        return EventKind::Oversize;
    }
    if !email.contains('@') {
        return EventKind::BadEmail;
    }
    if !LOYALTY_STATUSES.contains(&loyalty) {
        return EventKind::UnknownLoyalty;
    }
    if DateTime::parse_from_rfc3339(date).is_err() {
        return EventKind::WrongType;
    }
    EventKind::Valid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_recognised() {
        let mut g = EventGen::new(1, "t", 0.0);
        let now = Utc::now();
        for _ in 0..200 {
            for kind in std::iter::once(EventKind::Valid).chain(EventKind::MALFORMED) {
                let e = g.event_of(kind, now);
                assert_eq!(
                    classify(&e.payload),
                    kind,
                    "{}",
                    String::from_utf8_lossy(&e.payload)
                );
            }
        }
    }

    #[test]
    fn bad_ratio_mixes_kinds() {
        let mut g = EventGen::new(2, "t", 0.5);
        let now = Utc::now();
        let bad = (0..10_000)
            .filter(|_| g.next_event(now).kind != EventKind::Valid)
            .count();
        assert!((4_500..5_500).contains(&bad), "{bad}");
        let mut clean = EventGen::new(2, "t", 0.0);
        assert!((0..1000).all(|_| clean.next_event(now).kind == EventKind::Valid));
    }

    #[test]
    fn emails_are_unique_and_kinds_round_trip() {
        let mut g = EventGen::new(3, "abc", 0.0);
        let now = Utc::now();
        let emails: std::collections::HashSet<_> = (0..5000)
            .map(|_| {
                let v: Value = serde_json::from_slice(&g.next_event(now).payload).unwrap();
                v["email"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(emails.len(), 5000);
        for k in EventKind::MALFORMED {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
    }
}
