//! The GMS Storage API's data: a storage area of key/value pairs (text or binary) that lives
//! for a time to live, either on its own (`/genesys/1/storage/...`) or bound to a service
//! (`/genesys/1/service/{id}/storage`).
//!
//! Pure rules only: the TTL as GMS reads it, the limits on a key, a value and a whole area,
//! and how entries are merged. The store encodes [`StorageArea`] as it is.

use super::options::FieldError;
use super::time::Timestamp;

/// GMS: "If an incorrect value is specified, a default of 30 seconds is defined."
pub const DEFAULT_TTL_SECS: u64 = 30;

/// The longest TTL accepted (a year): longer is a 400 naming `ttl`, so that no area is kept
/// for ever by a typo.
pub const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

/// The largest value of one key, in bytes (413 above it, naming the key).
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// The largest storage area (keys and values together), in bytes (413 above it).
pub const MAX_AREA_BYTES: usize = 1024 * 1024;

/// The most keys one area holds (413 above it).
pub const MAX_KEYS: usize = 256;

/// The longest key, and the longest custom id, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest content type kept with a binary value.
const MAX_CONTENT_TYPE_BYTES: usize = 256;

/// One stored key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEntry {
    /// The key (the form field's name).
    pub key: String,
    /// The bytes as sent.
    pub value: Vec<u8>,
    /// `None` for a text value (a urlencoded field, or a multipart part without a file name
    /// or content type whose bytes are UTF-8); the part's content type for a binary one.
    pub content_type: Option<String>,
}

impl StorageEntry {
    /// A text value.
    pub fn text(key: impl Into<String>, value: impl Into<String>) -> StorageEntry {
        StorageEntry {
            key: key.into(),
            value: value.into().into_bytes(),
            content_type: None,
        }
    }

    /// A value from a multipart part: text when it has neither a file name nor a content type
    /// and is UTF-8 (what a browser sends for a text input), binary otherwise, kept with its
    /// content type (`application/octet-stream` when the part names none).
    pub fn from_part(
        key: impl Into<String>,
        value: Vec<u8>,
        content_type: Option<String>,
        is_file: bool,
    ) -> StorageEntry {
        let key = key.into();
        if !is_file && content_type.is_none() && std::str::from_utf8(&value).is_ok() {
            return StorageEntry {
                key,
                value,
                content_type: None,
            };
        }
        let content_type = content_type
            .filter(|t| is_content_type(t))
            .unwrap_or_else(|| "application/octet-stream".to_string());
        StorageEntry {
            key,
            value,
            content_type: Some(content_type),
        }
    }

    /// The value as text, if it is a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self.content_type {
            None => std::str::from_utf8(&self.value).ok(),
            Some(_) => None,
        }
    }

    fn size(&self) -> usize {
        self.key.len() + self.value.len()
    }
}

/// Whether `text` looks like a media type (`type/subtype`, printable ASCII, short): it is sent
/// back as a header, so nothing else is kept.
fn is_content_type(text: &str) -> bool {
    text.len() <= MAX_CONTENT_TYPE_BYTES
        && text.contains('/')
        && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// A storage area: its entries, who may read it, and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageArea {
    /// The id (server-chosen UUID, the custom id, or the service id of a service's storage).
    pub id: String,
    /// The `gms_user` it was created with; `None`: whoever has the id.
    pub owner: Option<String>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// When it is removed (`created_at + ttl`); a service's storage goes with its service.
    pub expire_at: Timestamp,
    /// The entries, one per key, in the order first sent.
    pub entries: Vec<StorageEntry>,
}

impl StorageArea {
    /// Whether the area is past its time at `now` (reads treat it as gone before the expiry
    /// job removes it).
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expire_at <= now
    }

    /// The entry of `key`.
    pub fn entry(&self, key: &str) -> Option<&StorageEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Sets every entry of `entries` (a key sent again replaces its value), then checks the
    /// limits of the whole area.
    ///
    /// # Errors
    /// The area would be over [`MAX_KEYS`] or [`MAX_AREA_BYTES`] (nothing changed).
    pub fn merge(&mut self, entries: Vec<StorageEntry>) -> Result<(), StorageLimit> {
        let mut merged = self.entries.clone();
        for entry in entries {
            match merged.iter_mut().find(|e| e.key == entry.key) {
                Some(existing) => *existing = entry,
                None => merged.push(entry),
            }
        }
        check_area(&merged)?;
        self.entries = merged;
        Ok(())
    }

    /// Removes `key`; false if it was not there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.key != key);
        self.entries.len() != before
    }
}

/// A storage limit a request went over (413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageLimit(pub String);

/// The TTL of `POST /genesys/1/storage/{ttl}` in seconds, as GMS reads it: a positive integer;
/// anything else is GMS's default of 30 seconds.
///
/// # Errors
/// A TTL above [`MAX_TTL_SECS`].
pub fn parse_ttl(text: &str) -> Result<u64, FieldError> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(DEFAULT_TTL_SECS);
    }
    match digits.parse::<u64>() {
        Ok(0) => Ok(DEFAULT_TTL_SECS),
        Ok(secs) if secs <= MAX_TTL_SECS => Ok(secs),
        // Over the maximum, or too long for a u64.
        _ => Err(FieldError::new(
            "ttl",
            format!("the time to live is longer than {MAX_TTL_SECS} seconds (a year): send a shorter {{ttl}}"),
        )),
    }
}

/// Checks a custom storage id (`/genesys/1/storage/custom/{customId}/{ttl}`).
///
/// # Errors
/// Empty, too long, or with control characters.
pub fn check_custom_id(id: &str) -> Result<(), FieldError> {
    if id.is_empty() || id.len() > MAX_NAME_BYTES || id.chars().any(char::is_control) {
        return Err(FieldError::new(
            "customId",
            format!("a custom storage id is 1 to {MAX_NAME_BYTES} bytes of printable text: send another {{customId}}"),
        ));
    }
    Ok(())
}

/// Checks the entries of one request: keys named, values within [`MAX_VALUE_BYTES`], and
/// the request alone within the area limits.
///
/// # Errors
/// A bad key (400, as a [`FieldError`]) or a limit passed ([`StorageLimit`]).
pub fn check_entries(entries: &[StorageEntry]) -> Result<(), EntryError> {
    for entry in entries {
        if entry.key.is_empty()
            || entry.key.len() > MAX_NAME_BYTES
            || entry.key.chars().any(char::is_control)
        {
            return Err(EntryError::Field(FieldError::new(
                "key",
                format!(
                    "a storage key is 1 to {MAX_NAME_BYTES} bytes of printable text: rename field `{}`",
                    entry.key.escape_default()
                ),
            )));
        }
        if entry.value.len() > MAX_VALUE_BYTES {
            return Err(EntryError::Limit(StorageLimit(format!(
                "the value of `{}` is {} bytes, more than the {MAX_VALUE_BYTES} a value may have: store less",
                entry.key,
                entry.value.len()
            ))));
        }
    }
    Ok(())
}

/// Why the entries of a request were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// A bad key (400).
    Field(FieldError),
    /// A limit (413).
    Limit(StorageLimit),
}

fn check_area(entries: &[StorageEntry]) -> Result<(), StorageLimit> {
    if entries.len() > MAX_KEYS {
        return Err(StorageLimit(format!(
            "a storage area holds at most {MAX_KEYS} keys; this one would hold {}: store fewer keys",
            entries.len()
        )));
    }
    let size: usize = entries.iter().map(StorageEntry::size).sum();
    if size > MAX_AREA_BYTES {
        return Err(StorageLimit(format!(
            "a storage area holds at most {MAX_AREA_BYTES} bytes of keys and values; this one would hold {size}: store less"
        )));
    }
    Ok(())
}

/// A new area of `entries` (a key sent twice keeps its last value).
///
/// # Errors
/// Over the area limits.
pub fn new_area(
    id: String,
    owner: Option<String>,
    now: Timestamp,
    ttl_secs: u64,
    entries: Vec<StorageEntry>,
) -> Result<StorageArea, StorageLimit> {
    let mut area = StorageArea {
        id,
        owner,
        created_at: now,
        expire_at: now.plus_secs(ttl_secs),
        entries: Vec::new(),
    };
    area.merge(entries)?;
    Ok(area)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_is_read_as_gms_reads_it() {
        let cases = [
            ("3600", Ok(3600)),
            ("1", Ok(1)),
            ("0", Ok(DEFAULT_TTL_SECS)),
            ("-5", Ok(DEFAULT_TTL_SECS)),
            ("abc", Ok(DEFAULT_TTL_SECS)),
            ("", Ok(DEFAULT_TTL_SECS)),
            ("31536000", Ok(MAX_TTL_SECS)),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_ttl(text).map_err(|e| e.field),
                expected,
                "ttl {text:?}"
            );
        }
        for text in ["31536001", "99999999999999999999999"] {
            assert_eq!(
                parse_ttl(text).unwrap_err().field,
                "ttl",
                "ttl {text:?} is too long"
            );
        }
    }

    #[test]
    fn parts_are_text_or_binary_with_their_type() {
        let text = StorageEntry::from_part("a", b"hello".to_vec(), None, false);
        assert_eq!(text.as_text(), Some("hello"));
        let file = StorageEntry::from_part("f", b"hello".to_vec(), None, true);
        assert_eq!(
            file.content_type.as_deref(),
            Some("application/octet-stream")
        );
        let png = StorageEntry::from_part("p", vec![0x89, b'P'], Some("image/png".into()), true);
        assert_eq!(png.content_type.as_deref(), Some("image/png"));
        assert_eq!(png.as_text(), None);
        let raw = StorageEntry::from_part("r", vec![0xff, 0xfe], None, false);
        assert_eq!(
            raw.content_type.as_deref(),
            Some("application/octet-stream")
        );
        let bad_type = StorageEntry::from_part("b", vec![1], Some("not a type".into()), true);
        assert_eq!(
            bad_type.content_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    #[test]
    fn merging_replaces_keys_and_keeps_the_area_within_limits() {
        let now = Timestamp::from_millis(1_000);
        let mut area = new_area(
            "id".into(),
            None,
            now,
            60,
            vec![StorageEntry::text("a", "1"), StorageEntry::text("a", "2")],
        )
        .unwrap();
        assert_eq!(
            area.entries,
            [StorageEntry::text("a", "2")],
            "last value wins"
        );
        assert_eq!(area.expire_at, Timestamp::from_millis(61_000));
        assert!(!area.expired(Timestamp::from_millis(60_999)));
        assert!(area.expired(Timestamp::from_millis(61_000)));

        area.merge(vec![StorageEntry::text("b", "x")]).unwrap();
        assert_eq!(area.entries.len(), 2);
        let big = StorageEntry {
            key: "big".into(),
            value: vec![0; MAX_VALUE_BYTES],
            content_type: Some("application/octet-stream".into()),
        };
        area.merge(vec![big.clone()]).unwrap();
        let before = area.clone();
        let refused = area.merge(vec![
            StorageEntry {
                key: "big2".into(),
                ..big.clone()
            },
            StorageEntry {
                key: "big3".into(),
                ..big
            },
        ]);
        assert!(refused.is_err(), "over MAX_AREA_BYTES");
        assert_eq!(area, before, "a refused merge changes nothing");

        let many: Vec<StorageEntry> = (0..=MAX_KEYS)
            .map(|i| StorageEntry::text(format!("k{i}"), "v"))
            .collect();
        assert!(
            new_area("m".into(), None, now, 60, many).is_err(),
            "over MAX_KEYS"
        );
    }

    #[test]
    fn keys_values_and_custom_ids_are_checked() {
        assert!(check_entries(&[StorageEntry::text("ok", "v")]).is_ok());
        assert!(matches!(
            check_entries(&[StorageEntry::text("", "v")]),
            Err(EntryError::Field(_))
        ));
        assert!(matches!(
            check_entries(&[StorageEntry::text("a\u{0}b", "v")]),
            Err(EntryError::Field(_))
        ));
        let huge = StorageEntry {
            key: "h".into(),
            value: vec![0; MAX_VALUE_BYTES + 1],
            content_type: None,
        };
        assert!(matches!(check_entries(&[huge]), Err(EntryError::Limit(_))));
        assert!(check_custom_id("my-id.1").is_ok());
        for bad in ["", "a\nb", &"x".repeat(MAX_NAME_BYTES + 1)] {
            assert_eq!(
                check_custom_id(bad).unwrap_err().field,
                "customId",
                "{bad:?}"
            );
        }
    }
}
