//! Request bodies and query strings, parsed into fields at the edge.
//!
//! GMS endpoints take `application/x-www-form-urlencoded` or `multipart/form-data` (callback
//! create also JSON). Query-string fields come first and body fields after them, so a body
//! field wins over a query field of the same name. Bodies are read with a size cap whether or
//! not they declare a Content-Length, and every value must be valid UTF-8.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use warp::{Buf, Filter, Rejection};

use super::error::ApiError;
use super::header_text;
use crate::domain::storage::StorageEntry;

/// Request fields in arrival order.
pub type Fields = Vec<(String, String)>;

/// Whether an endpoint accepts a JSON object as well as forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    /// JSON bodies are accepted (callback create).
    Accepted,
    /// JSON bodies get 415.
    Refused,
}

/// The last value of field `name`: body fields come after query fields, so the body wins.
pub fn last<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Query-string and body fields of a GMS request.
pub fn fields(
    limit: u64,
    json: Json,
) -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    query_fields()
        .and(header_text("content-type"))
        .and(body(limit))
        .and_then(
            move |mut fields: Fields, content_type: Option<String>, body: Bytes| async move {
                let parsed = parse_body(content_type.as_deref(), body, json)
                    .await
                    .map_err(warp::reject::custom)?;
                fields.extend(parsed);
                Ok::<_, Rejection>(fields)
            },
        )
}

/// Query-string fields only (GET requests).
pub fn query_fields() -> impl Filter<Extract = (Fields,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|query: String| async move {
            parse_urlencoded(query.as_bytes(), "query string").map_err(warp::reject::custom)
        })
}

/// A JSON body of type `T` (admin API). A missing Content-Type is taken as JSON.
pub fn json_body<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    header_text("content-type").and(body(limit)).and_then(
        |content_type: Option<String>, body: Bytes| async move {
            let essence = content_type.as_deref().map(mime_essence);
            if essence.as_deref().is_some_and(|e| e != "application/json") {
                return Err(warp::reject::custom(ApiError::UnsupportedMediaType(
                    "this endpoint takes a JSON body: send Content-Type: application/json".into(),
                )));
            }
            let mut json = serde_json::Deserializer::from_slice(&body);
            serde_path_to_error::deserialize::<_, T>(&mut json).map_err(|err| {
                let message = match err.path().to_string().as_str() {
                    "." | "" => format!("the JSON body is not valid: {}", err.inner()),
                    path => format!("field `{path}` in the JSON body: {}", err.inner()),
                };
                warp::reject::custom(ApiError::BadRequest(message))
            })
        },
    )
}

/// The raw body, at most `limit` bytes.
pub(super) fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| async move {
            if declared.is_some_and(|len| len > limit) {
                return Err(warp::reject::custom(ApiError::body_too_large(limit)));
            }
            read_limited(stream, limit)
                .await
                .map_err(warp::reject::custom)
        })
}

/// The whole body of `stream`, refused past `limit` bytes (413 naming the limit).
pub(super) async fn read_limited<S, B>(stream: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|err| {
            ApiError::BadRequest(format!("the request body could not be read: {err}"))
        })?;
        if (out.len() + chunk.remaining()) as u64 > limit {
            return Err(ApiError::body_too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}

/// `multipart/form-data; boundary=x` -> `multipart/form-data`.
fn mime_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

async fn parse_body(
    content_type: Option<&str>,
    body: Bytes,
    json: Json,
) -> Result<Fields, ApiError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let accepted = match json {
        Json::Accepted => {
            "application/x-www-form-urlencoded, multipart/form-data or application/json"
        }
        Json::Refused => "application/x-www-form-urlencoded or multipart/form-data",
    };
    let Some(content_type) = content_type else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body has no Content-Type: send it as {accepted}"
        )));
    };
    match mime_essence(content_type).as_str() {
        "application/x-www-form-urlencoded" => parse_urlencoded(&body, "body"),
        "multipart/form-data" => parse_multipart(content_type, body).await,
        "application/json" if json == Json::Accepted => parse_json_object(&body),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{other}` is not accepted here: send {accepted}"
        ))),
    }
}

/// Decodes `a=1&b=x%20y` with `+` as space, refusing bad escapes and invalid UTF-8.
fn parse_urlencoded(input: &[u8], source: &str) -> Result<Fields, ApiError> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = percent_decode(key, source, None)?;
            let value = percent_decode(value, source, Some(&key))?;
            Ok((key, value))
        })
        .collect()
}

fn percent_decode(input: &[u8], source: &str, field: Option<&str>) -> Result<String, ApiError> {
    let what = match field {
        Some(name) => format!("field `{name}` in the {source}"),
        None => format!("a field name in the {source}"),
    };
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&byte) = input.get(i) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                // Exactly two hex digits: `u8::from_str_radix` alone would take `%+5` (a sign).
                let hex = input
                    .get(i + 1..i + 3)
                    .and_then(|h| Some((hex_digit(h[0])? << 4) | hex_digit(h[1])?))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "{what} has a bad percent escape: write % as %25 and bytes as %XX"
                        ))
                    })?;
                out.push(hex);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        ApiError::BadRequest(format!("{what} is not valid UTF-8: encode text as UTF-8"))
    })
}

/// The value of one hex digit (either case), or `None` for any other byte.
fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

async fn parse_multipart(content_type: &str, body: Bytes) -> Result<Fields, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        ApiError::BadRequest(
            "multipart/form-data needs a boundary: send Content-Type: multipart/form-data; boundary=..."
                .into(),
        )
    })?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    loop {
        let field = multipart.next_field().await.map_err(|err| {
            ApiError::BadRequest(format!("the multipart body is malformed: {err}"))
        })?;
        let Some(field) = field else { break };
        let name = field
            .name()
            .map(str::to_string)
            .ok_or_else(|| ApiError::BadRequest("a multipart part has no name: give each part Content-Disposition: form-data; name=\"...\"".into()))?;
        let bytes = field.bytes().await.map_err(|err| {
            ApiError::BadRequest(format!("multipart part `{name}` is malformed: {err}"))
        })?;
        let value = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::BadRequest(format!(
                "field `{name}` is not valid UTF-8: encode text as UTF-8"
            ))
        })?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// The key/value pairs of a Storage API body: urlencoded fields are text; multipart parts
/// keep their bytes, and a part with a file name or a content type is a binary value with
/// that type (GMS: "Data may consist of key/value pairs of strings or binary objects").
/// Other body types are 415; the query string is not read.
pub fn storage_entries(
    limit: u64,
) -> impl Filter<Extract = (Vec<StorageEntry>,), Error = Rejection> + Clone {
    header_text("content-type").and(body(limit)).and_then(
        |content_type: Option<String>, body: Bytes| async move {
            parse_storage_body(content_type.as_deref(), body)
                .await
                .map_err(warp::reject::custom)
        },
    )
}

async fn parse_storage_body(
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Vec<StorageEntry>, ApiError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let accepted = "application/x-www-form-urlencoded or multipart/form-data";
    let Some(content_type) = content_type else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body has no Content-Type: send it as {accepted}"
        )));
    };
    match mime_essence(content_type).as_str() {
        "application/x-www-form-urlencoded" => Ok(parse_urlencoded(&body, "body")?
            .into_iter()
            .map(|(key, value)| StorageEntry::text(key, value))
            .collect()),
        "multipart/form-data" => {
            let boundary = multer::parse_boundary(content_type).map_err(|_| {
                ApiError::BadRequest(
                    "multipart/form-data needs a boundary: send Content-Type: multipart/form-data; boundary=..."
                        .into(),
                )
            })?;
            let stream =
                futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let mut entries = Vec::new();
            while let Some(field) = multipart.next_field().await.map_err(|err| {
                ApiError::BadRequest(format!("the multipart body is malformed: {err}"))
            })? {
                let name = field.name().map(str::to_string).ok_or_else(|| {
                    ApiError::BadRequest("a multipart part has no name: give each part Content-Disposition: form-data; name=\"...\"".into())
                })?;
                let is_file = field.file_name().is_some();
                let part_type = field.content_type().map(|mime| mime.to_string());
                let bytes = field.bytes().await.map_err(|err| {
                    ApiError::BadRequest(format!("multipart part `{name}` is malformed: {err}"))
                })?;
                entries.push(StorageEntry::from_part(
                    name,
                    bytes.to_vec(),
                    part_type,
                    is_file,
                ));
            }
            Ok(entries)
        }
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{other}` is not accepted here: send {accepted}"
        ))),
    }
}

/// A JSON body of type `T` for GMS APIs that take JSON only (the Notification API): any
/// other or no Content-Type is 415, as GMS answers ("Its absence or incorrect value can
/// result in a 415").
pub fn strict_json_body<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    header_text("content-type")
        .and_then(|content_type: Option<String>| async move {
            match content_type.as_deref().map(mime_essence).as_deref() {
                Some("application/json") => Ok(()),
                _ => Err(warp::reject::custom(ApiError::UnsupportedMediaType(
                    "this endpoint takes a JSON body only: send Content-Type: application/json"
                        .into(),
                ))),
            }
        })
        .untuple_one()
        .and(json_body::<T>(limit))
}

/// A flat JSON object: strings as they are, numbers and booleans as their text, nulls skipped.
fn parse_json_object(body: &[u8]) -> Result<Fields, ApiError> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|err| {
            ApiError::BadRequest(format!(
                "the JSON body is not valid: {err}; send one object of string values"
            ))
        })?;
    let mut fields = Vec::with_capacity(object.len());
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                return Err(ApiError::BadRequest(format!(
                    "field `{key}` is nested JSON: send a string (encode structured data as a JSON string)"
                )))
            }
        };
        fields.push((key, text));
    }
    Ok(fields)
}

/// The body parsers under the fuzzer ([`crate::fuzzing::form`]); panics when a property fails.
///
/// The first byte picks the body type: urlencoded (0), multipart (1; the next line is the
/// boundary) or a JSON object (2). Parsed fields, written back in the same type, parse to the
/// same fields; a refused body is a 400 (never a 5xx) that names what is wrong.
pub(crate) fn fuzz_form(data: &[u8]) {
    use futures_util::FutureExt;

    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let (content_type, body) = match selector % 3 {
        0 => ("application/x-www-form-urlencoded".to_string(), input),
        1 => {
            let split = input
                .iter()
                .position(|b| *b == b'\n')
                .unwrap_or(input.len());
            let boundary = String::from_utf8_lossy(&input[..split]);
            let body = input.get(split + 1..).unwrap_or_default();
            (format!("multipart/form-data; boundary={boundary}"), body)
        }
        _ => ("application/json".to_string(), input),
    };
    let parse = |content_type: &str, body: Vec<u8>| {
        parse_body(Some(content_type), Bytes::from(body), Json::Accepted)
            .now_or_never()
            .expect("parsing a body in memory never waits")
    };
    let fields = match parse(&content_type, body.to_vec()) {
        Ok(fields) => fields,
        Err(ApiError::BadRequest(message)) => {
            let named = ["field `", "a field name", "multipart", "JSON body"];
            assert!(
                named.iter().any(|n| message.contains(n)),
                "the error names no field or part: {message}"
            );
            return;
        }
        Err(other) => panic!("a body gave {other:?}, not a 400"),
    };
    let (content_type, printed) = match selector % 3 {
        0 => (
            "application/x-www-form-urlencoded".to_string(),
            urlencode(&fields),
        ),
        1 => match multipart_of(&fields) {
            Some(printed) => printed,
            // A name that needs quoting: writing it back is the encoder's problem, not ours.
            None => return,
        },
        _ => (
            "application/json".to_string(),
            serde_json::to_vec(
                &fields
                    .iter()
                    .cloned()
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .expect("strings print as JSON"),
        ),
    };
    let mut expected = fields;
    if selector % 3 == 2 {
        // A JSON object keeps one value per key (the last), in key order.
        let map: std::collections::BTreeMap<_, _> = expected.into_iter().collect();
        expected = map.into_iter().collect();
    }
    let again = parse(&content_type, printed.clone())
        .unwrap_or_else(|err| panic!("{expected:?} written as {printed:?}: {err:?}"));
    let again = if selector % 3 == 2 {
        let map: std::collections::BTreeMap<_, _> = again.into_iter().collect();
        map.into_iter().collect()
    } else {
        again
    };
    assert_eq!(
        again,
        expected,
        "written back as {:?}",
        String::from_utf8_lossy(&printed)
    );
}

/// `fields` as a urlencoded body, every byte but unreserved ones escaped.
fn urlencode(fields: &[(String, String)]) -> Vec<u8> {
    let escape = |text: &str| {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// `fields` as a multipart body with a boundary found in none of them, or `None` when a name
/// holds a character that Content-Disposition would need to quote.
fn multipart_of(fields: &[(String, String)]) -> Option<(String, Vec<u8>)> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    if !fields.iter().all(|(name, _)| name.chars().all(plain)) {
        return None;
    }
    let boundary = (0u32..)
        .map(|n| format!("fuzzboundary{n}"))
        .find(|b| fields.iter().all(|(_, v)| !v.contains(b.as_str())))?;
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Some((format!("multipart/form-data; boundary={boundary}"), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Fields {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn urlencoded_decodes_plus_and_escapes() {
        let fields = parse_urlencoded(b"a=1&b=hello+agent&c=x%20y%26z&flag&=v", "body").unwrap();
        assert_eq!(
            fields,
            pairs(&[
                ("a", "1"),
                ("b", "hello agent"),
                ("c", "x y&z"),
                ("flag", ""),
                ("", "v")
            ])
        );
    }

    #[test]
    fn urlencoded_refuses_bad_escapes_and_invalid_utf8_naming_the_field() {
        for (input, needle) in [
            (&b"name=%zz"[..], "`name`"),
            (b"name=%ff%fe", "`name`"),
            (b"name=%4", "`name`"),
            // A sign or a space inside the escape: not two hex digits.
            (b"name=%+5", "`name`"),
            (b"name=%-1", "`name`"),
            (b"name=%20%+5", "`name`"),
            (b"name=% 1", "`name`"),
            (b"name=%4&x=1", "`name`"),
            (b"%+5=1", "a field name"),
        ] {
            let err = parse_urlencoded(input, "body").unwrap_err();
            let ApiError::BadRequest(message) = err else {
                panic!("expected 400 for {input:?}")
            };
            assert!(message.contains(needle), "{input:?}: {message}");
        }
    }

    #[test]
    fn urlencoded_takes_hex_digits_of_either_case() {
        let fields = parse_urlencoded(b"a=%4a%4A%7e%7E%00", "body").unwrap();
        assert_eq!(fields, pairs(&[("a", "JJ~~\0")]));
    }

    #[tokio::test]
    async fn seed_multipart_bodies_parse_including_an_empty_one() {
        let body = "------WebKitFormBoundary0WnE36LruxJ4S5nu\r\nContent-Disposition: form-data; name=\"_customer_number\"\r\n\r\n4082652649\r\n------WebKitFormBoundary0WnE36LruxJ4S5nu\r\nContent-Disposition: form-data; name=\"usr_customer_name\"\r\n\r\nBob Markel\r\n------WebKitFormBoundary0WnE36LruxJ4S5nu--\r\n";
        let ct = "multipart/form-data; boundary=----WebKitFormBoundary0WnE36LruxJ4S5nu";
        let fields = parse_body(Some(ct), Bytes::from(body), Json::Refused)
            .await
            .unwrap();
        assert_eq!(
            fields,
            pairs(&[
                ("_customer_number", "4082652649"),
                ("usr_customer_name", "Bob Markel")
            ])
        );

        let empty = "------WebKitFormBoundaryNY84ld7wm7oHB9fp--\r\n";
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryNY84ld7wm7oHB9fp";
        let fields = parse_body(Some(ct), Bytes::from(empty), Json::Refused)
            .await
            .unwrap();
        assert!(fields.is_empty());
    }

    #[tokio::test]
    async fn malformed_multipart_is_a_400() {
        let ct = "multipart/form-data; boundary=XYZ";
        let err = parse_body(Some(ct), Bytes::from("--XYZ\r\ngarbage"), Json::Refused)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)), "{err:?}");
    }

    #[tokio::test]
    async fn json_is_accepted_only_where_allowed_and_must_be_flat() {
        let body = Bytes::from(r#"{"_customer_number":"555","n":5,"ok":true,"skip":null}"#);
        let fields = parse_body(Some("application/json"), body.clone(), Json::Accepted)
            .await
            .unwrap();
        assert_eq!(
            fields,
            pairs(&[("_customer_number", "555"), ("n", "5"), ("ok", "true")])
        );

        let err = parse_body(Some("application/json"), body, Json::Refused)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::UnsupportedMediaType(_)));

        let nested = Bytes::from(r#"{"a":{"b":1}}"#);
        let err = parse_body(Some("application/json"), nested, Json::Accepted)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest(ref m) if m.contains("`a`")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn other_content_types_with_a_body_are_415() {
        for ct in [Some("text/plain"), Some("application/xml"), None] {
            let err = parse_body(ct, Bytes::from("x=1"), Json::Accepted)
                .await
                .unwrap_err();
            assert!(matches!(err, ApiError::UnsupportedMediaType(_)), "{ct:?}");
        }
    }
}
