//! `_device_os=fcm` (and `gcm`): notifications sent through Firebase Cloud Messaging's HTTP
//! v1 API to the registration token in `_device_notification_id`.
//!
//! One push is `POST {endpoint}/v1/projects/{project_id}/messages:send` with
//! `Authorization: Bearer <access token>` and the body
//! `{"message":{"token":"<registration token>","data":{"id","tag","message"}}}`: FCM data
//! values are strings, so `message` is the GMS notification message as JSON text, which is
//! what GMS's own Android sample app reads (`extras.getString("message")`, parsed as its
//! `GcmSyncMessage`); `id` and `tag` are the push envelope's, as httpcb and CometD carry them.
//!
//! The access token is an OAuth2 token that the operator obtains (see `docs/decisions.md`
//! for why callbackd does not exchange a service-account key itself): given in the
//! configuration, or kept in a file that an outside refresher rewrites, re-read at most every
//! [`TOKEN_FILE_RECHECK`]. The POSTs are made by the HTTP push worker ([`super::httpcb`]),
//! with its timeout, retries and breaker; this module only builds them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::time::Timestamp;

use super::httpcb::{Job, JobKind};

/// FCM's own endpoint, used when `[push.fcm] endpoint` is not given.
pub const DEFAULT_ENDPOINT: &str = "https://fcm.googleapis.com";

/// How long a token read from a file is used before the file is read again.
pub const TOKEN_FILE_RECHECK: Duration = Duration::from_secs(30);

/// `[push.fcm]`: where FCM is and how callbackd proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FcmSettings {
    /// Scheme, host and port of the FCM API (`https://fcm.googleapis.com`), without the path.
    pub endpoint: String,
    /// The Firebase project the app's tokens belong to.
    pub project_id: String,
    /// The bearer token, or where to read it.
    pub credentials: FcmCredentials,
}

/// Where the OAuth2 access token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum FcmCredentials {
    /// A token given in the configuration (`access_token`, `CALLBACKD_PUSH_FCM_ACCESS_TOKEN`).
    AccessToken(String),
    /// A file holding the token (`access_token_file`), re-read so that it can be rotated.
    AccessTokenFile(PathBuf),
}

impl std::fmt::Debug for FcmCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself.
        match self {
            FcmCredentials::AccessToken(_) => f.write_str("AccessToken(..)"),
            FcmCredentials::AccessTokenFile(path) => {
                f.debug_tuple("AccessTokenFile").field(path).finish()
            }
        }
    }
}

/// Builds FCM push jobs. Cheap to clone.
#[derive(Clone)]
pub struct Fcm {
    /// `{endpoint}/v1/projects/{project_id}/messages:send`.
    url: Arc<str>,
    credentials: FcmCredentials,
    /// The last token read from the file and when; `None` until the first read.
    cached: Arc<Mutex<Option<(Timestamp, String)>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("url", &self.url)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Fcm {
    /// The sender for `settings`, timing its token re-reads on `clock`.
    pub fn new(settings: &FcmSettings, clock: Arc<dyn Clock>) -> Fcm {
        Fcm {
            url: send_url(&settings.endpoint, &settings.project_id).into(),
            credentials: settings.credentials.clone(),
            cached: Arc::new(Mutex::new(None)),
            clock,
        }
    }

    /// Where messages are POSTed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The push of stored notification `seq` of service `service_id` to the device with
    /// registration `token`; `envelope` is the `{"id","message","tag"}` push.
    ///
    /// # Errors
    /// The access token cannot be read (said why).
    pub fn job(
        &self,
        service_id: String,
        seq: u64,
        token: &str,
        envelope: &serde_json::Value,
    ) -> Result<Job, String> {
        Ok(Job {
            service_id,
            seq: Some(seq),
            url: self.url.to_string(),
            body: body(token, envelope).to_string(),
            content_type: "application/json; charset=UTF-8",
            authorization: Some(format!("Bearer {}", self.access_token()?)),
            kind: JobKind::Fcm,
        })
    }

    /// The access token: the configured one, or the file's (read again after
    /// [`TOKEN_FILE_RECHECK`]; a file that cannot be read keeps the last good token until
    /// it can).
    fn access_token(&self) -> Result<String, String> {
        let path = match &self.credentials {
            FcmCredentials::AccessToken(token) => return Ok(token.clone()),
            FcmCredentials::AccessTokenFile(path) => path,
        };
        let now = self.clock.now();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((read_at, token)) = cached.as_ref() {
            if now < *read_at + TOKEN_FILE_RECHECK {
                return Ok(token.clone());
            }
        }
        // A few hundred bytes, at most once per recheck period: not worth a blocking task.
        match std::fs::read_to_string(path).map(|text| text.trim().to_string()) {
            Ok(token) if !token.is_empty() && !token.contains(char::is_whitespace) => {
                *cached = Some((now, token.clone()));
                Ok(token)
            }
            read => {
                let why = match read {
                    Ok(_) => "it does not hold one token".to_string(),
                    Err(err) => err.to_string(),
                };
                match cached.as_ref() {
                    Some((_, token)) => {
                        tracing::warn!(path = %path.display(), error = %why, "cannot read the FCM access token file again; using the token read before");
                        Ok(token.clone())
                    }
                    None => Err(format!(
                        "cannot read the FCM access token from {}: {why}",
                        path.display()
                    )),
                }
            }
        }
    }
}

/// `{endpoint}/v1/projects/{project_id}/messages:send`.
fn send_url(endpoint: &str, project_id: &str) -> String {
    format!(
        "{}/v1/projects/{project_id}/messages:send",
        endpoint.trim_end_matches('/')
    )
}

/// The FCM HTTP v1 request body for one push.
fn body(token: &str, envelope: &serde_json::Value) -> serde_json::Value {
    let text = |key: &str| match &envelope[key] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    serde_json::json!({
        "message": {
            "token": token,
            "data": {
                "id": text("id"),
                "tag": text("tag"),
                "message": text("message"),
            }
        }
    })
}

/// Checks `[push.fcm]` values: an http(s) endpoint with a host and no path, a project id
/// that fits in the URL path.
///
/// # Errors
/// The setting that is wrong (`endpoint`, `project_id`) and why.
pub fn validate(settings: &FcmSettings) -> Result<(), (&'static str, String)> {
    let endpoint = settings.endpoint.as_str();
    let url = reqwest::Url::parse(endpoint)
        .map_err(|err| ("endpoint", format!("`{endpoint}` is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.path() != "/"
        || url.query().is_some()
    {
        return Err((
            "endpoint",
            format!("`{endpoint}` must be scheme, host and port only, like {DEFAULT_ENDPOINT}"),
        ));
    }
    let project = settings.project_id.as_str();
    if project.is_empty()
        || project.len() > 128
        || !project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err((
            "project_id",
            format!("`{project}` is not a Firebase project id (letters, digits and `-`, as in the console's project settings)"),
        ));
    }
    if let FcmCredentials::AccessToken(token) = &settings.credentials {
        if token.trim().is_empty() || token.trim().contains(char::is_whitespace) {
            return Err((
                "access_token",
                "missing or not one token: give access_token, access_token_file, or CALLBACKD_PUSH_FCM_ACCESS_TOKEN".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;

    fn settings(credentials: FcmCredentials) -> FcmSettings {
        FcmSettings {
            endpoint: "http://127.0.0.1:9/".into(),
            project_id: "demo-project".into(),
            credentials,
        }
    }

    #[test]
    fn a_job_is_an_http_v1_send_with_the_token_and_the_message_as_data() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let fcm = Fcm::new(
            &settings(FcmCredentials::AccessToken("ya29.token".into())),
            Arc::new(clock),
        );
        let envelope =
            json!({"id": "ab12", "tag": "service.internal.s1", "message": {"_id": "s1"}});

        let job = fcm.job("s1".into(), 7, "device-token", &envelope).unwrap();

        assert_eq!(
            job.url,
            "http://127.0.0.1:9/v1/projects/demo-project/messages:send"
        );
        assert_eq!(job.authorization.as_deref(), Some("Bearer ya29.token"));
        assert_eq!((job.kind, job.seq), (JobKind::Fcm, Some(7)));
        let body: serde_json::Value = serde_json::from_str(&job.body).unwrap();
        assert_eq!(
            body,
            json!({"message": {"token": "device-token", "data": {
                "id": "ab12",
                "tag": "service.internal.s1",
                "message": "{\"_id\":\"s1\"}",
            }}})
        );
    }

    #[test]
    fn a_token_file_is_read_again_after_the_recheck_period_and_kept_when_it_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let fcm = Fcm::new(
            &settings(FcmCredentials::AccessTokenFile(path.clone())),
            Arc::new(clock.clone()),
        );
        assert_eq!(fcm.access_token().unwrap(), "first", "trimmed");

        std::fs::write(&path, "second").unwrap();
        assert_eq!(fcm.access_token().unwrap(), "first", "cached");
        clock.advance_secs(TOKEN_FILE_RECHECK.as_secs());
        assert_eq!(fcm.access_token().unwrap(), "second", "read again");

        std::fs::remove_file(&path).unwrap();
        clock.advance_secs(TOKEN_FILE_RECHECK.as_secs());
        assert_eq!(fcm.access_token().unwrap(), "second", "the last good one");
    }

    #[test]
    fn a_missing_token_file_fails_the_job_with_its_path() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let fcm = Fcm::new(
            &settings(FcmCredentials::AccessTokenFile(
                "/nonexistent/fcm-token".into(),
            )),
            Arc::new(clock),
        );
        let err = fcm.job("s1".into(), 1, "t", &json!({})).unwrap_err();
        assert!(err.contains("/nonexistent/fcm-token"), "{err}");
    }

    #[test]
    fn bad_settings_are_named() {
        let good = settings(FcmCredentials::AccessToken("t".into()));
        assert_eq!(validate(&good), Ok(()));
        let cases = [
            ("endpoint", "fcm.googleapis.com"),
            ("endpoint", "ftp://fcm.googleapis.com"),
            ("endpoint", "https://fcm.googleapis.com/v1/projects"),
            ("project_id", ""),
            ("project_id", "a/b"),
            ("access_token", " "),
        ];
        for (field, value) in cases {
            let mut bad = good.clone();
            match field {
                "endpoint" => bad.endpoint = value.into(),
                "project_id" => bad.project_id = value.into(),
                _ => bad.credentials = FcmCredentials::AccessToken(value.into()),
            }
            assert_eq!(
                validate(&bad).map_err(|(setting, _)| setting),
                Err(field),
                "{field} = {value:?}"
            );
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let text = format!(
            "{:?}",
            settings(FcmCredentials::AccessToken("secret".into()))
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
