//! Entry points for the fuzz targets in `fuzz/` (`cargo fuzz`), one function per parser.
//!
//! Not an API: hidden from the docs and used only by `fuzz/fuzz_targets/*.rs` and by this
//! module's own test, which runs every committed seed (`fuzz/seeds/<target>/`) through the
//! same function, so that a machine without nightly or cargo-fuzz still checks that the
//! targets build and their seeds pass. Each function takes the fuzzer's bytes, feeds them to
//! one parser and panics when a property fails: a parsed value that does not survive
//! format -> parse, an error that does not say what is wrong, or a panic inside the parser.
//! The parsers stay private to their modules; only these functions are public.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::cometd::protocol::{self, Ack, Message};
use crate::domain::esp;
use crate::domain::kv::{self, KvList};
use crate::domain::skill::{SkillExpr, SkillExprError};
use crate::domain::target::{Target, TargetList, TargetStep, MAX_TARGET_STEPS};
use crate::domain::throttle::{
    self, Throttles, Window, DEFAULT_CALLBACKS_PER_SERVICE, DEFAULT_REQUEST_PARAMETER,
    DEFAULT_REQUEST_PARAMETERS_LIMIT, DEFAULT_TTL_SECS, MAX_REQUEST_PARAMETERS,
};
use crate::domain::time::Timestamp;

/// A fuzz target: checks one input, panicking on a broken property.
pub type FuzzTarget = fn(&[u8]);

/// The fuzz targets, by name: `cargo fuzz run <name>` calls the function.
pub const TARGETS: [(&str, FuzzTarget); 8] = [
    ("target", target),
    ("skill", skill),
    ("kv", kv),
    ("esp", esp),
    ("bayeux", bayeux),
    ("form", form),
    ("stored", stored),
    ("throttle", throttle),
];

/// `_target`: a target string or a JSON list of steps ([`TargetList::parse`]).
///
/// A parsed list has 1 to 15 steps and prints (as a JSON list) back to the same list; each
/// target prints back to itself; an error message is never empty.
pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(one) = Target::parse(text) {
        let printed = one.to_string();
        assert_eq!(
            Target::parse(&printed).as_ref(),
            Ok(&one),
            "target {text:?} printed as {printed:?} parses back differently"
        );
    }
    match TargetList::parse(text) {
        Ok(list) => {
            let steps = list.steps();
            assert!(
                (1..=MAX_TARGET_STEPS).contains(&steps.len()),
                "{} steps",
                steps.len()
            );
            let printed = Value::Array(steps.iter().map(step_json).collect()).to_string();
            assert_eq!(
                TargetList::parse(&printed).as_ref(),
                Ok(&list),
                "_target {text:?} printed as {printed} parses back differently"
            );
        }
        Err(err) => assert!(!err.to_string().is_empty(), "empty error for {text:?}"),
    }
}

/// One step as the JSON object `_target` lists hold.
fn step_json(step: &TargetStep) -> Value {
    let mut object = Map::new();
    object.insert("target".into(), json!(step.target.to_string()));
    object.insert("timeout".into(), json!(step.timeout_secs));
    object.insert("clear".into(), json!(step.clear));
    if let Some(check) = &step.check {
        object.insert("stat_to_check".into(), json!(check.statistic.name()));
        object.insert("stat_operator".into(), json!(check.operator.symbol()));
        object.insert("stat_value".into(), json!(check.value));
    }
    Value::Object(object)
}

/// Skill expressions ([`SkillExpr::parse`]): the canonical print parses back to the same
/// tree and prints the same; an error quotes the expression (only blank input is `Empty`).
pub fn skill(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SkillExpr::parse(text) {
        Ok(expr) => {
            let printed = expr.to_string();
            let again = SkillExpr::parse(&printed)
                .unwrap_or_else(|err| panic!("{text:?} printed as {printed:?}: {err}"));
            assert_eq!(again, expr, "{text:?} printed as {printed:?}");
            assert_eq!(
                again.to_string(),
                printed,
                "the canonical form is not stable"
            );
            // Evaluation terminates and does not panic, whatever the levels.
            let _ = expr.matches(|skill| Some(skill.len() as i64));
            let _ = expr.matches(|_| None);
        }
        Err(err) => {
            let message = err.to_string();
            let blank = text.trim().is_empty();
            assert_eq!(err == SkillExprError::Empty, blank, "{text:?}: {message}");
            assert!(
                blank || message.contains(text),
                "the error does not quote the expression {text:?}: {message}"
            );
        }
    }
}

/// The KV-collection format ([`kv::parse`]): a parsed list printed as JSON parses back to the
/// same list; an error message is never empty.
pub fn kv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match kv::parse(text) {
        Ok(list) => {
            let printed = serde_json::to_string(&list).expect("a KV list prints as JSON");
            let again: KvList = kv::parse(&printed)
                .unwrap_or_else(|err| panic!("{text:?} printed as {printed}: {err}"));
            assert_eq!(again, list, "{text:?} printed as {printed}");
        }
        Err(err) => assert!(!err.to_string().is_empty(), "empty error for {text:?}"),
    }
}

/// ESP requests ([`esp::parse`]). The input is the method name on the first line, then one
/// `name=value` parameter per line. A parsed request reports the method it was parsed as; a
/// refused one names a field and says what is wrong.
pub fn esp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or_default();
    let params: BTreeMap<String, String> = lines
        .map(|line| match line.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (line.to_string(), String::new()),
        })
        .collect();
    match esp::parse(method, &params) {
        Ok(request) => assert_eq!(request.method(), method, "parsed as another method"),
        Err(err) => {
            assert!(!err.field.is_empty(), "no field named: {}", err.message);
            assert!(
                !err.message.is_empty(),
                "no message for field {}",
                err.field
            );
        }
    }
}

/// Bayeux bodies ([`protocol::parse`]): every parsed message's channel starts with `/`; the
/// messages, written back as JSON, parse to the same messages; every reply the server builds
/// from them echoes the channel and id; an error message is never empty.
pub fn bayeux(data: &[u8]) {
    let messages = match protocol::parse(data) {
        Ok(messages) => messages,
        Err(err) => {
            assert!(!err.to_string().is_empty(), "empty error");
            return;
        }
    };
    assert!(!messages.is_empty(), "a parsed body has a message");
    let printed = Value::Array(messages.iter().map(message_json).collect()).to_string();
    let again = protocol::parse(printed.as_bytes())
        .unwrap_or_else(|err| panic!("{messages:?} printed as {printed}: {err}"));
    assert_eq!(again, messages, "printed as {printed}");
    for message in &messages {
        assert!(message.channel.starts_with('/'), "{:?}", message.channel);
        let replies = [
            Value::Object(protocol::success(message)),
            protocol::unknown_client(message),
            protocol::connect_reply(message, None, message.acknowledged_batch()),
            protocol::subscription_reply(message),
        ];
        for reply in replies {
            assert_eq!(reply["channel"], json!(message.channel), "{reply}");
            assert_eq!(reply.get("id"), message.id.as_ref(), "{reply}");
        }
        let _ = message.subscriptions();
    }
}

/// A message as a client would send it, with the fields the server reads.
fn message_json(message: &Message) -> Value {
    let mut object = Map::new();
    object.insert("channel".into(), json!(message.channel));
    if let Some(id) = &message.id {
        object.insert("id".into(), id.clone());
    }
    if let Some(client_id) = &message.client_id {
        object.insert("clientId".into(), json!(client_id));
    }
    if let Some(subscription) = &message.subscription {
        object.insert("subscription".into(), subscription.clone());
    }
    if message.has_advice {
        let advice = match message.advice_timeout {
            Some(timeout) => json!({ "timeout": timeout }),
            None => json!({}),
        };
        object.insert("advice".into(), advice);
    }
    if let Some(types) = &message.supported_connection_types {
        object.insert("supportedConnectionTypes".into(), json!(types));
    }
    match message.ack {
        Some(Ack::Requested) => object.insert("ext".into(), json!({ "ack": true })),
        Some(Ack::Batch(batch)) => object.insert("ext".into(), json!({ "ack": batch })),
        None => None,
    };
    Value::Object(object)
}

/// Request forms: `application/x-www-form-urlencoded` when the first byte is even,
/// `multipart/form-data` otherwise (the second line is then the Content-Type's boundary, the
/// rest the body). See `http::form::fuzz_form`.
pub fn form(data: &[u8]) {
    crate::http::fuzz_form(data);
}

/// Stored values, as the store reads them back from sled: the first byte picks the kind of
/// value, the rest is its stored bytes. See `store::fuzz::fuzz_stored`.
pub fn stored(data: &[u8]) {
    crate::store::fuzz_stored(data);
}

/// The four throttle options ([`Throttles::from_options`]). The input is one `name=value`
/// option per line; the lines `now=`, `start=` and `count=` (whole numbers) instead give a
/// moment and an interval's count for the window arithmetic.
///
/// Accepted options: each throttle is in force exactly when one of its options is set (and
/// `_throttle_ttl_N` is not 0), with the value given or GMS's default; the parameters are 1
/// to 16 distinct names, trimmed, printable, `_customer_number` or without a leading `_`,
/// in the order first given; printed back as options they parse to the same throttles. The
/// window arithmetic never panics, counts a new interval from 1, closes it after its TTL,
/// and refuses exactly when the count reached the maximum, saying so in GMS's words. A
/// refused option names one of the four options and says what is wrong.
pub fn throttle(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut options = BTreeMap::new();
    let mut moments: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.split('\n') {
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        match name {
            "now" | "start" | "count" => {
                if let Ok(number) = value.trim().parse() {
                    moments.insert(name, number);
                }
            }
            _ => {
                options.insert(name.to_string(), value.to_string());
            }
        }
    }
    let throttles = match Throttles::from_options(&options) {
        Ok(throttles) => throttles,
        Err(err) => {
            let named = err.option == "_throttle_request_parameters"
                || err.option == "_throttle_request_parameters_limit"
                || ["1", "2"].iter().any(|n| {
                    err.option == format!("_throttle_callbacks_per_service_{n}")
                        || err.option == format!("_throttle_ttl_{n}")
                });
            assert!(named, "the error names no throttle option: {err}");
            assert!(!err.message.is_empty(), "no message for {}", err.option);
            assert!(
                options.contains_key(&err.option),
                "the error names `{}`, which was not given",
                err.option
            );
            return;
        }
    };
    let given = |name: &str| {
        options
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u64>().expect("an accepted number parses"))
    };

    // Each interval throttle is in force exactly when it was asked for, with its values.
    let mut slots = throttles.intervals.iter().map(|t| t.slot);
    for slot in [1u8, 2] {
        let index = usize::from(slot - 1);
        let max = given(&format!("_throttle_callbacks_per_service_{slot}"));
        let ttl = given(&format!("_throttle_ttl_{slot}"));
        let expected_ttl = ttl.unwrap_or(DEFAULT_TTL_SECS[index]);
        let in_force = (max.is_some() || ttl.is_some()) && expected_ttl != 0;
        let found = throttles.intervals.iter().find(|t| t.slot == slot);
        assert_eq!(
            found.is_some(),
            in_force,
            "throttle {slot} in force: {options:?}"
        );
        if let Some(found) = found {
            assert_eq!(slots.next(), Some(slot), "throttle 1 comes first");
            assert_eq!(found.ttl_secs, expected_ttl, "throttle {slot}'s ttl");
            assert_eq!(
                found.max,
                max.unwrap_or(DEFAULT_CALLBACKS_PER_SERVICE[index]),
                "throttle {slot}'s maximum"
            );
        }
    }
    assert_eq!(slots.next(), None, "at most throttles 1 and 2");

    // The daily limit per parameter value.
    let limit = given("_throttle_request_parameters_limit");
    let names = options
        .get("_throttle_request_parameters")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    assert_eq!(
        throttles.per_parameter.is_some(),
        limit.is_some() || names.is_some(),
        "the parameter throttle in force: {options:?}"
    );
    if let Some(per_parameter) = &throttles.per_parameter {
        assert_eq!(
            per_parameter.limit,
            limit.unwrap_or(DEFAULT_REQUEST_PARAMETERS_LIMIT)
        );
        let parameters = &per_parameter.parameters;
        assert!(
            (1..=MAX_REQUEST_PARAMETERS).contains(&parameters.len()),
            "{} parameters",
            parameters.len()
        );
        for (i, name) in parameters.iter().enumerate() {
            assert!(
                !name.is_empty() && name.len() <= 128 && name.trim() == name,
                "parameter {name:?}"
            );
            assert!(!name.contains(',') && !name.chars().any(char::is_control));
            assert!(
                name == DEFAULT_REQUEST_PARAMETER || !name.starts_with('_'),
                "`{name}` is not a request parameter"
            );
            assert!(!parameters[..i].contains(name), "`{name}` twice");
        }
        let listed: Vec<&str> = names
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut first_seen: Vec<&str> = Vec::new();
        for name in listed {
            if !first_seen.contains(&name) {
                first_seen.push(name);
            }
        }
        if first_seen.is_empty() {
            first_seen.push(DEFAULT_REQUEST_PARAMETER);
        }
        assert_eq!(parameters, &first_seen, "the names as given, in order");
    }

    // Printed back as options, they parse to the same throttles.
    let mut printed = BTreeMap::new();
    for interval in &throttles.intervals {
        printed.insert(
            format!("_throttle_callbacks_per_service_{}", interval.slot),
            interval.max.to_string(),
        );
        printed.insert(
            format!("_throttle_ttl_{}", interval.slot),
            interval.ttl_secs.to_string(),
        );
    }
    if let Some(per_parameter) = &throttles.per_parameter {
        printed.insert(
            "_throttle_request_parameters".to_string(),
            per_parameter.parameters.join(","),
        );
        printed.insert(
            "_throttle_request_parameters_limit".to_string(),
            per_parameter.limit.to_string(),
        );
    }
    let again = Throttles::from_options(&printed)
        .unwrap_or_else(|err| panic!("{options:?} printed as {printed:?}: {err}"));
    assert_eq!(again, throttles, "{options:?} printed as {printed:?}");
    assert_eq!(
        throttles.any(),
        !throttles.intervals.is_empty() || throttles.per_parameter.is_some()
    );

    // The window arithmetic, at the moments given.
    let now = Timestamp::from_millis(moments.get("now").copied().unwrap_or(1_000_000));
    let start = Timestamp::from_millis(moments.get("start").copied().unwrap_or(0));
    let count = moments.get("count").copied().unwrap_or(0);
    let window = Window { start, count };
    for interval in &throttles.intervals {
        let fresh = interval.admit(None, now);
        assert_eq!(
            fresh,
            Window {
                start: now,
                count: 1
            },
            "a new interval"
        );
        assert_eq!(
            interval.counted(Some(fresh), now),
            1,
            "counted at its start"
        );
        assert_eq!(interval.counted(None, now), 0);
        let counted = interval.counted(Some(window), now);
        assert!(
            counted == 0 || counted == count,
            "counted {counted} of {count}"
        );
        let open = counted == count && count > 0;
        if now < start {
            assert_eq!(
                counted, 0,
                "an interval that begins later counts nothing now"
            );
        }
        let admitted = interval.admit(Some(window), now);
        if open {
            assert_eq!(admitted.start, start, "the same interval");
            assert_eq!(admitted.count, count.saturating_add(1));
        } else if counted == 0 {
            assert!(
                admitted
                    == Window {
                        start: now,
                        count: 1
                    }
                    || (admitted.start == start && admitted.count == count.saturating_add(1)),
                "{admitted:?}"
            );
        }
        match interval.check("svc", Some(window), now) {
            Ok(()) => assert!(
                counted < interval.max,
                "{counted} admitted past {}",
                interval.max
            ),
            Err(refusal) => {
                assert!(
                    counted >= interval.max,
                    "refused at {counted} of {}",
                    interval.max
                );
                assert_eq!(
                    refusal.to_string(),
                    format!(
                        "Limit of queued callbacks for svc is reached for interval {}s.",
                        interval.ttl_secs
                    )
                );
            }
        }
        // The interval ends after its TTL.
        let ends = now
            .as_millis()
            .checked_add(interval.ttl_secs.saturating_mul(1000));
        if let Some(ends) = ends {
            assert_eq!(
                interval.counted(Some(fresh), Timestamp::from_millis(ends)),
                0,
                "still open after {}s",
                interval.ttl_secs
            );
        }
    }
    if let Some(per_parameter) = &throttles.per_parameter {
        let refused = per_parameter.check("_customer_number", "555", count);
        assert_eq!(refused.is_err(), count >= per_parameter.limit);
        let _ = throttle::day_of(now);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// The smoke pass CI runs without nightly: every committed seed of every target goes
    /// through the function the fuzz target calls, so a target cannot rot unnoticed.
    #[test]
    fn every_committed_fuzz_seed_passes_its_target() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        for (name, run) in TARGETS {
            let dir = seeds.join(name);
            let mut count = 0;
            for entry in
                std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
            {
                let path = entry.unwrap().path();
                let input = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(&input));
                assert!(
                    outcome.is_ok(),
                    "seed {} fails target {name}",
                    path.display()
                );
                count += 1;
            }
            assert!(
                count >= 3,
                "target {name} has only {count} seeds in {}",
                dir.display()
            );
        }
    }
}
