//! Value encoding: one format-version byte, then bincode 2 (standard config) of the value.
//! The version byte lets a migration recognise old values and lets this binary refuse values
//! it does not understand instead of misreading them.
//!
//! The values encoded are the store's own types ([`super::stored`]), each [`Versioned`]; the
//! domain's types are converted to and from them and never reach bincode.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The most memory one decoded value may claim: 64 MiB, far above the largest value the store
/// writes (a storage area holds at most 1 MiB, a service record a few KiB). Without it bincode
/// trusts a damaged length prefix and tries to allocate whatever it says (the `stored` fuzz
/// target found a value asking for 1.7 TB), which aborts the process instead of reporting the
/// value as corrupt.
const DECODE_LIMIT: usize = 64 * 1024 * 1024;

/// bincode's standard configuration with [`DECODE_LIMIT`]; the limit changes no byte on the
/// wire, so values written before it read the same.
fn decoding() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// A stored type: the format-version byte its values are written behind. One type is one
/// format: a change to its encoding is a new type with a new version, and a migration.
pub trait Versioned {
    /// The format-version byte.
    const VERSION: u8;
}

/// Encodes `value` behind its type's format-version byte.
pub fn write<T: Versioned + Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    encode(T::VERSION, value)
}

/// Decodes a value written by [`write`]; `what` names it in errors ("service 123").
pub fn read<T: Versioned + DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    decode(T::VERSION, bytes, what)
}

/// Like [`read`], for a type that borrows its strings from `bytes` instead of allocating
/// them: for index values read by the hundred thousand (the time index's entries).
pub fn read_borrowed<'de, T: Versioned + Deserialize<'de>>(
    bytes: &'de [u8],
    what: &str,
) -> Result<T, StoreError> {
    decode_borrowed(T::VERSION, bytes, what)
}

/// Encodes `value` behind the format-version byte `version`.
pub fn encode<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![version];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|err| StoreError::Encode(err.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a value written by [`encode`] with format `version`.
///
/// `what` names the value in errors ("service 123").
pub fn decode<T: DeserializeOwned>(version: u8, bytes: &[u8], what: &str) -> Result<T, StoreError> {
    let body = body_of(version, bytes, what)?;
    let (value, _) =
        bincode::serde::decode_from_slice(body, decoding()).map_err(|err| corrupt(what, err))?;
    Ok(value)
}

/// Like [`decode`], for a type that borrows its strings from `bytes` instead of allocating
/// them: for index values read by the hundred thousand (the time index's entries).
pub fn decode_borrowed<'de, T: Deserialize<'de>>(
    version: u8,
    bytes: &'de [u8],
    what: &str,
) -> Result<T, StoreError> {
    let body = body_of(version, bytes, what)?;
    let (value, _) = bincode::serde::borrow_decode_from_slice(body, decoding())
        .map_err(|err| corrupt(what, err))?;
    Ok(value)
}

/// The bincode body after the format-version byte, if that byte is `version`.
fn body_of<'a>(version: u8, bytes: &'a [u8], what: &str) -> Result<&'a [u8], StoreError> {
    let (found, body) = bytes.split_first().ok_or_else(|| StoreError::Corrupt {
        what: what.to_string(),
        reason: "empty value".into(),
    })?;
    if *found != version {
        return Err(StoreError::Corrupt {
            what: what.to_string(),
            reason: format!("format version {found}, expected {version}: run `callbackd migrate`"),
        });
    }
    Ok(body)
}

fn corrupt(what: &str, err: bincode::error::DecodeError) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_carry_their_version() {
        let bytes = encode(3, &("hello".to_string(), 42u64)).unwrap();
        assert_eq!(bytes[0], 3);
        let back: (String, u64) = decode(3, &bytes, "test").unwrap();
        assert_eq!(back, ("hello".to_string(), 42));
    }

    #[test]
    fn other_versions_and_garbage_are_refused_not_misread() {
        let bytes = encode(1, &"x".to_string()).unwrap();
        assert!(decode::<String>(2, &bytes, "test").is_err());
        assert!(decode::<String>(1, &[], "test").is_err());
        assert!(decode::<(u64, u64)>(1, &[1, 0xff], "test").is_err());
    }

    /// Found by the `stored` fuzz target: a chat session whose damaged length prefix claims
    /// 1.7 TB. It must be refused as corrupt, not allocated (which aborted the process).
    #[test]
    fn a_length_prefix_past_the_limit_is_corrupt_not_an_allocation() {
        let mut value = vec![7u8];
        // A string whose varint length says u64 tag 0xfd: eight bytes of 0x0000_019a_deef_0e00.
        value.push(0xfd);
        value.extend_from_slice(&0x0000_019a_deef_0e00u64.to_le_bytes());
        let err = decode::<String>(7, &value, "value 1").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what, .. } if what == "value 1"),
            "{err:?}"
        );
    }
}
