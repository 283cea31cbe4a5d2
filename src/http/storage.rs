//! The GMS Storage API: `/genesys/1/storage/...` and a service's `/genesys/1/service/{id}/storage`.
//!
//! Bodies are urlencoded or multipart (values of multipart parts may be binary); JSON is 415.
//! The id is looked at before the body: unknown 404, another user's 403, then 400/413.

use std::collections::BTreeMap;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::error::{respond, ApiError};
use super::form;
use super::params::{GmsUser, ServiceId};
use super::{client, reply, service_access, with_state, Client};
use crate::app::{storage, AppState};
use crate::domain::storage::{StorageEntry, MAX_AREA_BYTES};

/// The largest Storage API body: a full area and the multipart framing around it.
pub(super) const MAX_STORAGE_BODY: u64 = MAX_AREA_BYTES as u64 + 64 * 1024;

/// The Storage API routes.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    storage_create_custom(state.clone())
        .or(storage_create(state.clone()))
        .unify()
        .or(storage_get(state.clone()))
        .unify()
        .or(storage_delete(state.clone()))
        .unify()
        .or(storage_value_get(state.clone()))
        .unify()
        .or(storage_value_delete(state.clone()))
        .unify()
        .or(storage_binary_get(state.clone()))
        .unify()
        .or(service_storage_routes(state))
        .unify()
}

fn service_storage_routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_storage_get(state.clone())
        .or(service_storage_post(state.clone()))
        .unify()
        .or(service_storage_delete(state.clone()))
        .unify()
        .or(service_storage_value_get(state.clone()))
        .unify()
        .or(service_storage_value_delete(state.clone()))
        .unify()
        .or(service_storage_binary_get(state))
        .unify()
}

/// The id of a new storage area.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StorageCreated {
    /// The id to read it with (`GET /genesys/1/storage/{id}`).
    id: String,
}

/// The key/value pairs to store: text fields, and with multipart also files.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // describes the body for the document only
pub struct StorageForm {
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

/// Every key of an area as `Map<String, String>` (what GMS clients such as the Genesys
/// Android sample read it into): a text value as its string, a binary one as the URL that
/// serves its bytes, `binary_url(key)`.
fn all_keys(
    entries: &[StorageEntry],
    binary_url: impl Fn(&str) -> String,
) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|entry| {
            let value = match entry.as_text() {
                Some(text) => text.to_string(),
                None => binary_url(&entry.key),
            };
            (entry.key.clone(), value)
        })
        .collect()
}

/// `text` as one URL path segment: RFC 3986's unreserved characters as they are, every
/// other byte percent-encoded (a key may hold spaces, `/`, `?` or non-ASCII text).
fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A path segment of a `binary/...` URL decoded back into the key [`path_segment`] wrote
/// (`%XX` escapes, UTF-8; `+` is a plus in a path). warp hands path segments over as sent;
/// one that is not a valid escape is looked up as written, so it is a 404 like any unknown
/// key, after the access checks.
fn decode_segment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let Some(hex) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            else {
                return segment.to_string();
            };
            out.push(hex);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| segment.to_string())
}

/// One value as it was stored: text as `text/plain;charset=UTF-8`, binary with its type.
fn value_reply(entry: StorageEntry) -> Response {
    let content_type = entry
        .content_type
        .clone()
        .unwrap_or_else(|| "text/plain;charset=UTF-8".to_string());
    reply::bytes(&content_type, entry.value)
}

fn ok_empty() -> Response {
    reply::json(StatusCode::OK, &serde_json::json!({}))
}

/// POST /genesys/1/storage/{ttl}
#[utoipa::path(post, path = "/genesys/1/storage/{id}", tag = "storage",
    params(("id" = String, Path, description = "For a POST, the time to live in seconds (GMS's `{ttl}`): a positive integer; anything else is 30 s"), GmsUser),
    request_body(content(
        (StorageForm = "application/x-www-form-urlencoded"), (StorageForm = "multipart/form-data"))),
    responses((status = 200, description = "Stored and durable; bound to the `gms_user` given", body = StorageCreated)))]
fn storage_create(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and(form::storage_entries(MAX_STORAGE_BODY))
        .then(
            |ttl: String, state: AppState, client: Client, entries: Vec<StorageEntry>| async move {
                let created = storage::create(&state, &ttl, client.gms_user(), entries).await;
                respond(created, |id| {
                    reply::json(StatusCode::OK, &StorageCreated { id })
                })
            },
        )
}

/// POST /genesys/1/storage/custom/{customId}/{ttl}
#[utoipa::path(post, path = "/genesys/1/storage/custom/{customId}/{ttl}", tag = "storage",
    params(("customId" = String, Path, description = "The id to store under; bound to the caller's `gms_user`"),
        ("ttl" = String, Path, description = "The time to live in seconds; anything but a positive integer is 30 s"), GmsUser),
    request_body(content(
        (StorageForm = "application/x-www-form-urlencoded"), (StorageForm = "multipart/form-data"))),
    responses((status = 200, description = "Stored (replacing the same user's area of that id) and durable", body = StorageCreated)))]
fn storage_create_custom(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / "custom" / String / String)
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client(&state))
        .and_then(
            |custom_id: String, ttl: String, state: AppState, client: Client| async move {
                // Another user's id is 403 before the body is read.
                storage::check_custom_access(&state, &custom_id, client.gms_user())
                    .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
                Ok::<_, Rejection>((custom_id, ttl, state, client))
            },
        )
        .untuple_one()
        .and(form::storage_entries(MAX_STORAGE_BODY))
        .then(
            |custom_id: String,
             ttl: String,
             state: AppState,
             client: Client,
             entries: Vec<StorageEntry>| async move {
                let created =
                    storage::create_custom(&state, &custom_id, &ttl, client.gms_user(), entries)
                        .await;
                respond(created, |id| {
                    reply::json(StatusCode::OK, &StorageCreated { id })
                })
            },
        )
}

/// GET /genesys/1/storage/{id}
#[utoipa::path(get, path = "/genesys/1/storage/{id}", tag = "storage",
    params(("id" = String, Path, description = "The storage id"), GmsUser),
    responses((status = 200, description = "Every key: a text value as its string, a binary one as the URL of its bytes (`.../storage/binary/{id}/{key}`)", body = BTreeMap<String, String>)))]
fn storage_get(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .map(|id: String, state: AppState, client: Client| {
            let area = storage::area(&state, &id, client.gms_user());
            respond(area, |area| {
                let base = &client.base_url;
                let binary_url = |key: &str| {
                    format!(
                        "{base}/genesys/1/storage/binary/{}/{}",
                        path_segment(&id),
                        path_segment(key)
                    )
                };
                reply::json(StatusCode::OK, &all_keys(&area.entries, binary_url))
            })
        })
}

/// DELETE /genesys/1/storage/{id}
#[utoipa::path(delete, path = "/genesys/1/storage/{id}", tag = "storage",
    params(("id" = String, Path, description = "The storage id"), GmsUser),
    responses((status = 200, description = "Removed", body = Object)))]
fn storage_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(client(&state))
        .then(|id: String, state: AppState, client: Client| async move {
            respond(
                storage::delete(&state, &id, client.gms_user()).await,
                |()| ok_empty(),
            )
        })
}

/// GET /genesys/1/storage/{id}/{key}
#[utoipa::path(get, path = "/genesys/1/storage/{id}/{key}", tag = "storage",
    params(("id" = String, Path, description = "The storage id"), ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The value as stored: text as text/plain, binary with its content type", content_type = "*/*", body = Vec<u8>)))]
fn storage_value_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / String / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .map(|id: String, key: String, state: AppState, client: Client| {
            respond(
                storage::value(&state, &id, &key, client.gms_user()),
                value_reply,
            )
        })
}

/// DELETE /genesys/1/storage/{id}/{key}
#[utoipa::path(delete, path = "/genesys/1/storage/{id}/{key}", tag = "storage",
    params(("id" = String, Path, description = "The storage id"), ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The key is removed", body = Object)))]
fn storage_value_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / String / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(client(&state))
        .then(
            |id: String, key: String, state: AppState, client: Client| async move {
                let deleted = storage::delete_key(&state, &id, &key, client.gms_user()).await;
                respond(deleted, |()| ok_empty())
            },
        )
}

/// GET /genesys/1/storage/binary/{id}/{key}
#[utoipa::path(get, path = "/genesys/1/storage/binary/{id}/{key}", tag = "storage",
    params(("id" = String, Path, description = "The storage id"), ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The value's bytes with the content type it was stored with (the URL the all-keys reply gives a binary value)", content_type = "*/*", body = Vec<u8>)))]
fn storage_binary_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "storage" / "binary" / String / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .map(|id: String, key: String, state: AppState, client: Client| {
            let (id, key) = (decode_segment(&id), decode_segment(&key));
            respond(
                storage::value(&state, &id, &key, client.gms_user()),
                value_reply,
            )
        })
}

/// `/genesys/1/service/{id}/storage` with the state and the caller, after the 404/403 check.
fn service_storage_path(
    state: AppState,
) -> impl Filter<Extract = (String, AppState, Client), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String / "storage")
        .and(with_state(state.clone()))
        .and(client(&state))
}

/// GET /genesys/1/service/{id}/storage
#[utoipa::path(get, path = "/genesys/1/service/{id}/storage", tag = "storage",
    params(ServiceId, GmsUser),
    responses((status = 200, description = "Every key of the service's storage (`{}` if none): a text value as its string, a binary one as the URL of its bytes (`.../storage/binary/{key}`)", body = BTreeMap<String, String>)))]
fn service_storage_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_storage_path(state).and(warp::get()).map(
        |id: String, state: AppState, client: Client| {
            respond(
                storage::service_area(&state, &id, client.gms_user()),
                |entries| {
                    let base = &client.base_url;
                    let binary_url = |key: &str| {
                        format!(
                            "{base}/genesys/1/service/{}/storage/binary/{}",
                            path_segment(&id),
                            path_segment(key)
                        )
                    };
                    reply::json(StatusCode::OK, &all_keys(&entries, binary_url))
                },
            )
        },
    )
}

/// POST /genesys/1/service/{id}/storage
#[utoipa::path(post, path = "/genesys/1/service/{id}/storage", tag = "storage",
    params(ServiceId, GmsUser),
    request_body(content(
        (StorageForm = "application/x-www-form-urlencoded"), (StorageForm = "multipart/form-data"))),
    responses((status = 200, description = "Stored with the service (a key sent again is replaced); removed with it", body = StorageCreated)))]
fn service_storage_post(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_storage_path(state)
        .and(warp::post())
        .and_then(service_access)
        .untuple_one()
        .and(form::storage_entries(MAX_STORAGE_BODY))
        .then(
            |id: String, state: AppState, client: Client, entries: Vec<StorageEntry>| async move {
                let stored = storage::service_store(&state, &id, client.gms_user(), entries).await;
                respond(stored, |()| {
                    reply::json(StatusCode::OK, &StorageCreated { id })
                })
            },
        )
}

/// DELETE /genesys/1/service/{id}/storage
#[utoipa::path(delete, path = "/genesys/1/service/{id}/storage", tag = "storage",
    params(ServiceId, GmsUser),
    responses((status = 200, description = "The service's storage is removed", body = Object)))]
fn service_storage_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    service_storage_path(state).and(warp::delete()).then(
        |id: String, state: AppState, client: Client| async move {
            let deleted = storage::service_delete(&state, &id, client.gms_user()).await;
            respond(deleted, |()| ok_empty())
        },
    )
}

/// GET /genesys/1/service/{id}/storage/{key}
#[utoipa::path(get, path = "/genesys/1/service/{id}/storage/{key}", tag = "storage",
    params(ServiceId, ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The value as stored: text as text/plain, binary with its content type", content_type = "*/*", body = Vec<u8>)))]
fn service_storage_value_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String / "storage" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .map(|id: String, key: String, state: AppState, client: Client| {
            respond(
                storage::service_value(&state, &id, &key, client.gms_user()),
                value_reply,
            )
        })
}

/// DELETE /genesys/1/service/{id}/storage/{key}
#[utoipa::path(delete, path = "/genesys/1/service/{id}/storage/{key}", tag = "storage",
    params(ServiceId, ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The key is removed", body = Object)))]
fn service_storage_value_delete(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String / "storage" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(client(&state))
        .then(
            |id: String, key: String, state: AppState, client: Client| async move {
                let deleted =
                    storage::service_delete_key(&state, &id, &key, client.gms_user()).await;
                respond(deleted, |()| ok_empty())
            },
        )
}

/// GET /genesys/1/service/{id}/storage/binary/{key}
#[utoipa::path(get, path = "/genesys/1/service/{id}/storage/binary/{key}", tag = "storage",
    params(ServiceId, ("key" = String, Path, description = "The key"), GmsUser),
    responses((status = 200, description = "The value's bytes with the content type it was stored with", content_type = "*/*", body = Vec<u8>)))]
fn service_storage_binary_get(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("genesys" / "1" / "service" / String / "storage" / "binary" / String)
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(client(&state))
        .map(|id: String, key: String, state: AppState, client: Client| {
            let key = decode_segment(&key);
            respond(
                storage::service_value(&state, &id, &key, client.gms_user()),
                value_reply,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_goes_into_a_path_segment_and_comes_back() {
        for key in [
            "FileKey",
            "a b",
            "x/y?z#w",
            "ünïcode",
            "100%",
            "a+b",
            "~._-",
        ] {
            let segment = path_segment(key);
            assert!(
                segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                "{key:?} -> {segment}"
            );
            assert_eq!(decode_segment(&segment), key, "{key:?} -> {segment}");
        }
    }

    #[test]
    fn a_segment_that_is_not_an_escape_is_kept_as_written() {
        for raw in ["100%", "%zz", "%4", "%ff%fe"] {
            assert_eq!(decode_segment(raw), raw, "{raw}");
        }
        assert_eq!(decode_segment("a+b"), "a+b", "a plus is a plus in a path");
    }
}
