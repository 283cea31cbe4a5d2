//! The Chat Server key-value collection format (`EventAttributes` and other `{l}` parameters).
//!
//! A workflow writes a nested list of key-value pairs as one string, in either of two styles
//! (Chat Server Administration Guide, "Key-value collection format specification"):
//!
//! - JSON-like: `{ "key1": "value1", "key3": { "subkey1": "subvalue1" } }`. Objects become
//!   nested lists; strings stay text; numbers, booleans and `null` become their JSON text
//!   (`1.5`, `true`, `null`); an array stays **one** text value holding its compact JSON text,
//!   so a rich-content body (the `content` array of quick replies) is kept as a value and not
//!   turned into a nested list.
//! - List-like: `key1:value1|key2:value2|key3.subkey1:subvalue1`. `|` separates pairs, the
//!   first `:` splits the key from the value (later colons belong to the value, so
//!   `url:http://x` works), dots in the key make nesting. Whitespace around keys, key segments
//!   and values is ignored. `\|`, `\:`, `\.` and `\\` put a literal `|`, `:`, `.` or `\` into a
//!   key or value.
//!
//! The style is chosen by the first non-whitespace character: `{` means JSON-like. Other
//! input that is valid JSON as a whole (`[1, 2]`, `"a:b"`, `42`) is refused as "not an
//! object" rather than read in the list-like style.
//!
//! This module only parses text into a [`KvList`]; it knows nothing about which keys a request
//! expects. Error messages say what is wrong and how to fix it but do not name the parameter:
//! callers prefix them (e.g. "field `EventAttributes`: ").

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

/// The deepest nesting accepted, counting the top level as 1 (`a.b.c:x` has depth 3).
///
/// Deeper input is refused rather than risking deep recursion when the list is later
/// printed, stored or dropped.
pub const MAX_DEPTH: usize = 32;

/// One value in a key-value collection: a text or a nested list.
///
/// Serialized untagged, so a [`KvList`] reads as plain JSON: text as a string, a nested list
/// as an object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum KvValue {
    /// A text value (numbers, booleans and arrays from the JSON-like style included).
    Text(String),
    /// A nested list of key-value pairs.
    List(KvList),
}

impl KvValue {
    /// A text value.
    pub fn text(value: impl Into<String>) -> Self {
        KvValue::Text(value.into())
    }

    /// The text, if this is a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            KvValue::Text(text) => Some(text),
            KvValue::List(_) => None,
        }
    }

    /// The nested list, if this is a list.
    pub fn as_list(&self) -> Option<&KvList> {
        match self {
            KvValue::Text(_) => None,
            KvValue::List(list) => Some(list),
        }
    }
}

/// A key-value collection: keys in sorted order, each with a text or a nested list.
pub type KvList = BTreeMap<String, KvValue>;

/// Why a key-value collection could not be parsed.
///
/// Byte offsets count from the start of the whole input; pair numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KvError {
    /// The input is empty, only whitespace, or only empty `|`-separated pairs.
    #[error(
        "the key-value collection is empty: write pairs like `key1:value1|key2:value2` \
         or a JSON object like {{\"key1\": \"value1\"}}"
    )]
    Empty,

    /// The input starts with `{` but is not valid JSON.
    #[error(
        "invalid JSON at line {line}, column {column}: {reason}; \
         fix the JSON or write the list-like style `key1:value1|key2:value2`"
    )]
    InvalidJson {
        /// The line of the problem, from 1.
        line: usize,
        /// The column of the problem, from 1.
        column: usize,
        /// What the JSON parser found.
        reason: String,
    },

    /// The input is valid JSON but not an object (`[1, 2]`, `"text"`, `42`).
    ///
    /// Input that does not start with `{` but is valid JSON as a whole gets this error
    /// instead of a list-like reading.
    #[error("the JSON top level is {found}, not an object: wrap the pairs in {{ }}, like {{\"key\": \"value\"}}")]
    JsonNotObject {
        /// What the top level is (`an array`, `a string`, ...).
        found: &'static str,
    },

    /// A list-like pair without an unescaped `:`.
    #[error(
        "pair {pair} `{text}` (at byte {offset}) has no `:`: write it as key:value, \
         and escape a literal colon in a key as `\\:`"
    )]
    MissingColon {
        /// Which pair, from 1.
        pair: usize,
        /// The pair as written.
        text: String,
        /// Where the pair starts.
        offset: usize,
    },

    /// A list-like pair whose key is empty (`:value`).
    #[error("pair {pair} (at byte {offset}) has an empty key: write a name before the `:`")]
    EmptyKey {
        /// Which pair, from 1.
        pair: usize,
        /// Where the pair starts.
        offset: usize,
    },

    /// A JSON object with an empty or blank key (`{"": "value"}`).
    #[error("{inside} has an empty key: give every key a name")]
    EmptyJsonKey {
        /// Which object: `the top-level object` or `` the object `a.b` ``.
        inside: String,
    },

    /// A dotted key with an empty segment (`a..b`, `.a`, `a.`).
    #[error(
        "key `{key}` (pair {pair}, at byte {offset}) has an empty part between dots: \
         remove the extra `.`, or escape a literal dot as `\\.`"
    )]
    EmptySegment {
        /// The key as written.
        key: String,
        /// Which pair, from 1.
        pair: usize,
        /// Where the pair starts.
        offset: usize,
    },

    /// A key used both for a text value and for a nested list (`a:1|a.b:2`).
    #[error(
        "key `{key}` is used both as a value and as a list (pair {pair}, at byte {offset}): \
         give the value and the list different names"
    )]
    KeyConflict {
        /// The dotted path of the key used both ways.
        key: String,
        /// The pair that made the conflict.
        pair: usize,
        /// Where that pair starts.
        offset: usize,
    },

    /// The same key given twice (`a:1|a:2`).
    #[error(
        "key `{key}` is given twice (again in pair {pair}, at byte {offset}): \
         keep one of them"
    )]
    DuplicateKey {
        /// The dotted path of the repeated key.
        key: String,
        /// The pair that repeated it.
        pair: usize,
        /// Where that pair starts.
        offset: usize,
    },

    /// Nesting deeper than [`MAX_DEPTH`].
    #[error(
        "key `{key}` is nested {depth} levels deep: at most {max} levels are allowed, \
         flatten the structure"
    )]
    TooDeep {
        /// The dotted path (truncated to the allowed depth plus one).
        key: String,
        /// How deep the key is (at least).
        depth: usize,
        /// [`MAX_DEPTH`].
        max: usize,
    },
}

/// Parses a key-value collection in either style (see the module docs).
///
/// # Errors
/// A [`KvError`] naming the offending key or position and saying how to fix it.
pub fn parse(input: &str) -> Result<KvList, KvError> {
    if input.trim_start().starts_with('{') {
        return parse_json(input);
    }
    // `[1, 2]` or `"a:b"`: the writer meant JSON (and the list-like reading would be
    // nonsense), so say what is wrong with it as JSON. Most list-like input fails this
    // check at its first character.
    if let Ok(value) = serde_json::from_str::<Value>(input) {
        return Err(KvError::JsonNotObject {
            found: json_kind(&value),
        });
    }
    parse_list_style(input)
}

/// The JSON-like style: parse with serde_json, then convert.
///
/// A key repeated inside one JSON object keeps its last value (serde_json's behaviour).
fn parse_json(input: &str) -> Result<KvList, KvError> {
    let value: Value = serde_json::from_str(input).map_err(|err| KvError::InvalidJson {
        line: err.line(),
        column: err.column(),
        reason: json_reason(&err),
    })?;
    match value {
        Value::Object(map) => json_object(map, &mut Vec::new()),
        other => Err(KvError::JsonNotObject {
            found: json_kind(&other),
        }),
    }
}

/// serde_json's message without its trailing " at line L column C" (we say where ourselves).
fn json_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// "an array", "a string", ... for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Converts one JSON object into a list. `path` is the keys above it, for messages.
///
/// Recursion is bounded: serde_json refuses input nested deeper than 128 levels, and
/// [`MAX_DEPTH`] stops us earlier.
fn json_object(
    map: serde_json::Map<String, Value>,
    path: &mut Vec<String>,
) -> Result<KvList, KvError> {
    let mut list = KvList::new();
    for (key, value) in map {
        if key.trim().is_empty() {
            return Err(KvError::EmptyJsonKey {
                inside: if path.is_empty() {
                    "the top-level object".to_string()
                } else {
                    format!("the object `{}`", path.join("."))
                },
            });
        }
        path.push(key.clone());
        let converted = match value {
            Value::Object(inner) => {
                if path.len() >= MAX_DEPTH {
                    return Err(KvError::TooDeep {
                        key: path.join("."),
                        depth: path.len() + 1,
                        max: MAX_DEPTH,
                    });
                }
                KvValue::List(json_object(inner, path)?)
            }
            Value::String(text) => KvValue::Text(text),
            // Value's Display is its compact JSON text: `1.5`, `true`, `null`, `[1,2]`.
            other => KvValue::Text(other.to_string()),
        };
        path.pop();
        list.insert(key, converted);
    }
    Ok(list)
}

/// One `|`-separated pair of the list-like style, after unescaping.
struct RawPair {
    /// Which pair, from 1 (blank pairs are counted too, so numbers match what was written).
    number: usize,
    /// Where the pair starts in the input.
    offset: usize,
    /// The pair as written (trimmed), for messages.
    text: String,
    /// The key's dot-separated segments, unescaped, untrimmed.
    segments: Vec<String>,
    /// The value, unescaped, untrimmed; `None` when no unescaped `:` was seen.
    value: Option<String>,
}

/// The list-like style.
///
/// Blank pairs (`a:1||b:2`, a trailing `|`) are skipped; a backslash before any other
/// character (or at the end) is kept as a literal backslash.
fn parse_list_style(input: &str) -> Result<KvList, KvError> {
    let mut list = KvList::new();
    let mut any = false;
    for pair in split_pairs(input) {
        if pair.value.is_none() && pair.text.is_empty() {
            continue;
        }
        any = true;
        insert_pair(&mut list, pair)?;
    }
    if any {
        Ok(list)
    } else {
        Err(KvError::Empty)
    }
}

/// Splits the input into pairs, resolving escapes in one pass.
fn split_pairs(input: &str) -> Vec<RawPair> {
    let mut pairs = Vec::new();
    let mut pair = PairReader::new(1, 0);
    let mut chars = input.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                let escaped = chars
                    .peek()
                    .map(|&(_, next)| next)
                    .filter(|next| matches!(next, '|' | ':' | '.' | '\\'));
                match escaped {
                    Some(next) => {
                        pair.push(next);
                        chars.next();
                    }
                    None => pair.push('\\'),
                }
            }
            '|' => {
                let next = PairReader::new(pair.number + 1, at + 1);
                pairs.push(std::mem::replace(&mut pair, next).finish(input, at));
            }
            ':' if pair.value.is_none() => pair.start_value(),
            '.' if pair.value.is_none() => pair.end_segment(),
            other => pair.push(other),
        }
    }
    pairs.push(pair.finish(input, input.len()));
    pairs
}

/// The pair being read by [`split_pairs`].
struct PairReader {
    /// Which pair, from 1.
    number: usize,
    /// Where the pair starts in the input.
    offset: usize,
    /// The key segments read so far.
    segments: Vec<String>,
    /// The key segment being read (until the `:`).
    current: String,
    /// The value, once the `:` was seen.
    value: Option<String>,
}

impl PairReader {
    fn new(number: usize, offset: usize) -> Self {
        Self {
            number,
            offset,
            segments: Vec::new(),
            current: String::new(),
            value: None,
        }
    }

    /// Adds a literal character to the value, or to the key segment before the `:`.
    fn push(&mut self, c: char) {
        self.value.as_mut().unwrap_or(&mut self.current).push(c);
    }

    /// An unescaped `.` in the key.
    fn end_segment(&mut self) {
        self.segments.push(std::mem::take(&mut self.current));
    }

    /// The first unescaped `:`.
    fn start_value(&mut self) {
        self.end_segment();
        self.value = Some(String::new());
    }

    /// The pair, which ends at byte `end` of `input`.
    fn finish(mut self, input: &str, end: usize) -> RawPair {
        if self.value.is_none() {
            self.end_segment();
        }
        RawPair {
            number: self.number,
            offset: self.offset,
            text: input
                .get(self.offset..end)
                .unwrap_or_default()
                .trim()
                .to_string(),
            segments: self.segments,
            value: self.value,
        }
    }
}

/// Checks one pair's key and puts its value into `list`, creating nested lists on the way.
fn insert_pair(list: &mut KvList, pair: RawPair) -> Result<(), KvError> {
    let RawPair {
        number,
        offset,
        text,
        segments,
        value,
    } = pair;
    let Some(value) = value else {
        return Err(KvError::MissingColon {
            pair: number,
            text,
            offset,
        });
    };
    let segments: Vec<String> = segments.iter().map(|s| s.trim().to_string()).collect();
    let written_key = segments.join(".");
    if segments.iter().all(String::is_empty) && segments.len() == 1 {
        return Err(KvError::EmptyKey {
            pair: number,
            offset,
        });
    }
    if segments.iter().any(String::is_empty) {
        return Err(KvError::EmptySegment {
            key: written_key,
            pair: number,
            offset,
        });
    }
    if segments.len() > MAX_DEPTH {
        return Err(KvError::TooDeep {
            key: segments[..=MAX_DEPTH].join("."),
            depth: segments.len(),
            max: MAX_DEPTH,
        });
    }
    let Some((leaf, parents)) = segments.split_last() else {
        // split_pairs always gives at least one segment; treat the impossible as an empty key.
        return Err(KvError::EmptyKey {
            pair: number,
            offset,
        });
    };

    // Walk down iteratively, creating lists as needed.
    let mut level = list;
    for (depth, segment) in parents.iter().enumerate() {
        let slot = level
            .entry(segment.clone())
            .or_insert_with(|| KvValue::List(KvList::new()));
        match slot {
            KvValue::List(inner) => level = inner,
            KvValue::Text(_) => {
                return Err(KvError::KeyConflict {
                    key: segments[..=depth].join("."),
                    pair: number,
                    offset,
                })
            }
        }
    }
    match level.get(leaf) {
        Some(KvValue::Text(_)) => Err(KvError::DuplicateKey {
            key: written_key,
            pair: number,
            offset,
        }),
        Some(KvValue::List(_)) => Err(KvError::KeyConflict {
            key: written_key,
            pair: number,
            offset,
        }),
        None => {
            level.insert(leaf.clone(), KvValue::Text(value.trim().to_string()));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> KvValue {
        KvValue::text(value)
    }

    fn list<const N: usize>(pairs: [(&str, KvValue); N]) -> KvValue {
        KvValue::List(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn top<const N: usize>(pairs: [(&str, KvValue); N]) -> KvList {
        match list(pairs) {
            KvValue::List(inner) => inner,
            KvValue::Text(_) => unreachable!(),
        }
    }

    #[test]
    fn seed_json_like_example_parses_into_nested_lists() {
        let input = r#"{ "key1": "value1", "key2": "value2", "key3": { "subkey1": "subvalue1" } }"#;
        let expected = top([
            ("key1", text("value1")),
            ("key2", text("value2")),
            ("key3", list([("subkey1", text("subvalue1"))])),
        ]);
        assert_eq!(parse(input), Ok(expected));
    }

    #[test]
    fn seed_list_like_example_parses_into_nested_lists() {
        let input = "key1:value1|key2:value2|key3.subkey1:subvalue1";
        let expected = top([
            ("key1", text("value1")),
            ("key2", text("value2")),
            ("key3", list([("subkey1", text("subvalue1"))])),
        ]);
        assert_eq!(parse(input), Ok(expected));
    }

    #[test]
    fn seed_quick_replies_keep_the_content_array_as_one_text_value() {
        let input = r#"{ "structured-content": { "genesys-chat": { "content": { "type": "Message", "contentType": "quick-replies", "content": [ { "id": 1, "type": "quick-reply", "action": "message", "text": "Black" }, { "id": 2, "type": "quick-reply", "action": "message", "text": "Green" }, { "id": 3, "type": "quick-reply", "action": "message", "text": "Mint" } ] }, "type": "Generic" } } }"#;
        let parsed = parse(input).expect("the seed example parses");

        let chat = parsed["structured-content"].as_list().expect("a list")["genesys-chat"]
            .as_list()
            .expect("a list");
        assert_eq!(chat["type"], text("Generic"));
        let content = chat["content"].as_list().expect("content object is a list");
        assert_eq!(content["type"], text("Message"));
        assert_eq!(content["contentType"], text("quick-replies"));

        let body = content["content"]
            .as_text()
            .expect("the rich-content array stays one text value");
        assert!(!body.contains(": "), "compact JSON text: {body}");
        let body: Value = serde_json::from_str(body).expect("the text is JSON");
        let expected: Value = serde_json::json!([
            { "id": 1, "type": "quick-reply", "action": "message", "text": "Black" },
            { "id": 2, "type": "quick-reply", "action": "message", "text": "Green" },
            { "id": 3, "type": "quick-reply", "action": "message", "text": "Mint" }
        ]);
        assert_eq!(body, expected);
    }

    #[test]
    fn json_scalars_become_their_text() {
        let parsed = parse(
            r#"{"n": 42, "f": 1.5, "neg": -3, "t": true, "f2": false, "z": null, "a": [1, "x"]}"#,
        )
        .expect("parses");
        let expected = top([
            ("n", text("42")),
            ("f", text("1.5")),
            ("neg", text("-3")),
            ("t", text("true")),
            ("f2", text("false")),
            ("z", text("null")),
            ("a", text(r#"[1,"x"]"#)),
        ]);
        assert_eq!(parsed, expected);
    }

    #[test]
    fn nesting_three_deep_works_in_both_styles() {
        let expected = top([(
            "a",
            list([("b", list([("c", text("deep"))])), ("x", text("1"))]),
        )]);
        assert_eq!(parse("a.b.c:deep|a.x:1"), Ok(expected.clone()));
        assert_eq!(
            parse(r#"{"a": {"b": {"c": "deep"}, "x": "1"}}"#),
            Ok(expected)
        );
    }

    #[test]
    fn values_keep_later_colons() {
        let parsed = parse("url:http://example.com:8080/a?b=c|time:12:30:00").expect("parses");
        assert_eq!(
            parsed,
            top([
                ("url", text("http://example.com:8080/a?b=c")),
                ("time", text("12:30:00")),
            ])
        );
    }

    #[test]
    fn dots_in_values_do_not_nest() {
        assert_eq!(
            parse("host:www.example.com"),
            Ok(top([("host", text("www.example.com"))]))
        );
    }

    #[test]
    fn escapes_put_literal_characters_into_keys_and_values() {
        let cases: [(&str, KvList); 6] = [
            (r"a:x\|y", top([("a", text("x|y"))])),
            (r"a\:b:c", top([("a:b", text("c"))])),
            (r"a\.b:c", top([("a.b", text("c"))])),
            (r"a:back\\slash", top([("a", text(r"back\slash"))])),
            (r"a:x\\|b:y", top([("a", text(r"x\")), ("b", text("y"))])),
            // Not an escape: the backslash is kept.
            (r"path:C:\temp\n", top([("path", text(r"C:\temp\n"))])),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "input {input}");
        }
    }

    #[test]
    fn trailing_backslash_is_kept() {
        assert_eq!(parse(r"a:b\"), Ok(top([("a", text(r"b\"))])));
    }

    #[test]
    fn whitespace_around_keys_segments_and_values_is_ignored() {
        let parsed = parse("  key1 : value one  |  key3 . sub : x  | ").expect("parses");
        assert_eq!(
            parsed,
            top([
                ("key1", text("value one")),
                ("key3", list([("sub", text("x"))])),
            ])
        );
    }

    #[test]
    fn blank_pairs_are_skipped_and_empty_values_allowed() {
        assert_eq!(
            parse("a:1||b:|"),
            Ok(top([("a", text("1")), ("b", text(""))]))
        );
    }

    #[test]
    fn json_keys_with_dots_are_not_split() {
        assert_eq!(parse(r#"{"a.b": "c"}"#), Ok(top([("a.b", text("c"))])));
    }

    #[test]
    fn empty_json_object_is_an_empty_list() {
        assert_eq!(parse("  {}  "), Ok(KvList::new()));
    }

    #[test]
    fn both_styles_give_the_same_map_for_the_same_data() {
        let cases = [
            (
                r#"{ "key1": "value1", "key2": "value2", "key3": { "subkey1": "subvalue1" } }"#,
                "key1:value1|key2:value2|key3.subkey1:subvalue1",
            ),
            (
                r#"{"url": "http://x:1/a", "n": 5, "a": {"b": {"c": "d", "e": "f"}}}"#,
                "url:http://x:1/a|n:5|a.b.c:d|a.b.e:f",
            ),
            (
                r#"{"pipe": "a|b", "dot.key": "v", "colon:key": "w"}"#,
                r"pipe:a\|b|dot\.key:v|colon\:key:w",
            ),
        ];
        for (json, list_style) in cases {
            let from_json = parse(json).expect(json);
            let from_list = parse(list_style).expect(list_style);
            assert_eq!(from_json, from_list, "{json} vs {list_style}");
        }
    }

    #[test]
    fn serializes_as_plain_json() {
        let parsed = parse("a:1|b.c:2").expect("parses");
        let json = serde_json::to_string(&parsed).expect("serializes");
        assert_eq!(json, r#"{"a":"1","b":{"c":"2"}}"#);
        let back: KvList = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, parsed);
    }

    #[test]
    fn every_error_names_the_problem_and_the_fix() {
        let cases: [(&str, KvError, &str); 14] = [
            ("", KvError::Empty, "key1:value1"),
            ("   ", KvError::Empty, "key1:value1"),
            (" | | ", KvError::Empty, "key1:value1"),
            (
                "a:1|novalue",
                KvError::MissingColon {
                    pair: 2,
                    text: "novalue".into(),
                    offset: 4,
                },
                "key:value",
            ),
            (":x", KvError::EmptyKey { pair: 1, offset: 0 }, "empty key"),
            (
                "a:1| :x",
                KvError::EmptyKey { pair: 2, offset: 4 },
                "pair 2",
            ),
            (
                "a..b:x",
                KvError::EmptySegment {
                    key: "a..b".into(),
                    pair: 1,
                    offset: 0,
                },
                "remove the extra `.`",
            ),
            (
                ".a:x",
                KvError::EmptySegment {
                    key: ".a".into(),
                    pair: 1,
                    offset: 0,
                },
                "`.a`",
            ),
            (
                "a:1|a.b:2",
                KvError::KeyConflict {
                    key: "a".into(),
                    pair: 2,
                    offset: 4,
                },
                "both as a value and as a list",
            ),
            (
                "a.b:2|a:1",
                KvError::KeyConflict {
                    key: "a".into(),
                    pair: 2,
                    offset: 6,
                },
                "different names",
            ),
            (
                "a.b:1|a.b:2",
                KvError::DuplicateKey {
                    key: "a.b".into(),
                    pair: 2,
                    offset: 6,
                },
                "given twice",
            ),
            (
                "[1, 2]",
                KvError::JsonNotObject { found: "an array" },
                "wrap the pairs in { }",
            ),
            (
                r#"{"": "x"}"#,
                KvError::EmptyJsonKey {
                    inside: "the top-level object".into(),
                },
                "has an empty key",
            ),
            (
                r#"{"a": {"b": {" ": "x"}}}"#,
                KvError::EmptyJsonKey {
                    inside: "the object `a.b`".into(),
                },
                "give every key a name",
            ),
        ];
        for (input, expected, hint) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err, expected, "input {input:?}");
            let message = err.to_string();
            assert!(message.contains(hint), "{input:?}: {message}");
        }
    }

    #[test]
    fn invalid_json_says_where() {
        let err = parse("{ \"a\": \"b\",\n  \"c\" }").expect_err("invalid");
        match &err {
            KvError::InvalidJson { line, column, .. } => {
                assert_eq!((*line, *column), (2, 7), "{err}");
            }
            other => panic!("expected InvalidJson, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("line 2, column 7"), "{message}");
        assert!(message.contains("expected `:`"), "{message}");
        assert!(!message.contains("at line 2 column"), "{message}");
    }

    #[test]
    fn truncated_and_trailing_json_is_invalid() {
        for input in [r#"{"a": "b""#, r#"{"a": "b"} x"#, "{", r#"{"a": 1e999}"#] {
            assert!(
                matches!(parse(input), Err(KvError::InvalidJson { .. })),
                "input {input}: {:?}",
                parse(input)
            );
        }
    }

    #[test]
    fn json_top_level_must_be_an_object() {
        let cases = [
            (r#" ["a", {"b": 1}] "#, "an array"),
            (r#""text""#, "a string"),
            ("42", "a number"),
            ("true", "a boolean"),
            ("null", "null"),
            (r#""a:b""#, "a string"),
        ];
        for (input, found) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(err, KvError::JsonNotObject { found }, "input {input}");
            assert!(err.to_string().contains("wrap the pairs in { }"), "{err}");
        }
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let ok_key = vec!["k"; MAX_DEPTH].join(".");
        assert!(
            parse(&format!("{ok_key}:v")).is_ok(),
            "exactly MAX_DEPTH is fine"
        );

        let deep_key = vec!["k"; 100_000].join(".");
        let err = parse(&format!("{deep_key}:v")).expect_err("too deep");
        assert!(
            matches!(
                err,
                KvError::TooDeep {
                    depth: 100_000,
                    max: MAX_DEPTH,
                    ..
                }
            ),
            "{err:?}"
        );

        let deep_json = format!(
            "{}\"v\"{}",
            "{\"k\": ".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let err = parse(&deep_json).expect_err("too deep");
        assert!(matches!(err, KvError::TooDeep { .. }), "{err:?}");

        let very_deep_json = format!("{}{}", "{\"k\": ".repeat(10_000), "}".repeat(10_000));
        assert!(
            matches!(parse(&very_deep_json), Err(KvError::InvalidJson { .. })),
            "serde_json's recursion limit answers first"
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let samples = [
            "\\",
            "|",
            ":",
            ".",
            "\\|\\:\\.",
            "{",
            "}",
            "{]",
            "a:b:c|d",
            "ä.ö:ü|€:\\€",
            "a.b.c",
            "\u{0}:\u{0}",
            "{\"a\":{\"b\":[{}]}}",
        ];
        for sample in samples {
            let _ = parse(sample);
        }
    }
}
