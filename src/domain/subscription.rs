//! The GMS Notification API's subscriptions: who is told about events whose tag matches a
//! filter, and over which channel.
//!
//! Pure rules only: the request as GMS documents it, its validation (each error names its
//! field), the channels callbackd has, and how a filter matches a tag.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::options::FieldError;
use super::time::Timestamp;

/// GMS's `defaultSubscriptionExpiration` (and its minimum): a subscription without `expire`
/// lives this long.
pub const DEFAULT_EXPIRE_SECS: u64 = 30;

/// The longest `expire` accepted (30 days).
pub const MAX_EXPIRE_SECS: u64 = 30 * 24 * 3600;

/// The longest `subscriberId`, `filter`, `deviceId`, `providerName` or property.
pub const MAX_TEXT_BYTES: usize = 2048;

/// The most `notificationDetails.properties`.
pub const MAX_PROPERTIES: usize = 32;

/// `POST /genesys/1/notification/subscription`, as GMS documents it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRequest {
    /// The subscriber's id (mandatory).
    pub subscriber_id: String,
    /// The name of a provider configuration (kept; callbackd has one of each channel).
    #[serde(default)]
    pub provider_name: Option<String>,
    /// Where and how to deliver.
    pub notification_details: NotificationDetails,
    /// Sent as the `Authorization` header of `customhttp` deliveries.
    #[serde(default)]
    pub authorization: Option<String>,
    /// Seconds until the subscription expires (default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2592000)]
    pub expire: Option<u64>,
    /// Matched against the tags of published events: the tag itself, or a prefix ending in
    /// `*` (`ors.contact.*`), or `*` for every tag.
    pub filter: String,
}

/// `notificationDetails` of a subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationDetails {
    /// `comet`: the `gms_user` whose CometD clients get the events (the caller's own);
    /// `httpcb`: the URL POSTed to; `customhttp`: the id sent in the body.
    pub device_id: String,
    /// `comet`, `httpcb` or `customhttp`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Free properties; `customhttp` reads `url` (where to POST).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// How a subscription's events are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// Pushed to the CometD clients of this `gms_user`.
    Comet {
        /// Their user.
        gms_user: String,
    },
    /// POSTed to this URL, the body being the message itself.
    HttpCallback {
        /// The `deviceId`.
        url: String,
    },
    /// POSTed to this URL as `{"deviceId","message"}`, with the subscription's
    /// `authorization` as `Authorization` header.
    CustomHttp {
        /// `notificationDetails.properties.url`.
        url: String,
        /// The `deviceId` sent in the body.
        device_id: String,
        /// The `Authorization` header value.
        authorization: Option<String>,
    },
}

impl Channel {
    /// The URL a delivery of this channel goes to (none for comet).
    pub fn url(&self) -> Option<&str> {
        match self {
            Channel::Comet { .. } => None,
            Channel::HttpCallback { url } | Channel::CustomHttp { url, .. } => Some(url),
        }
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Server-chosen id (a UUID).
    pub id: String,
    /// The `gms_user` it was made with; only that user may delete it.
    pub owner: Option<String>,
    /// `subscriberId`.
    pub subscriber_id: String,
    /// `providerName`.
    pub provider_name: Option<String>,
    /// The `filter` on tags.
    pub filter: String,
    /// Where events go.
    pub channel: Channel,
    /// `notificationDetails.properties`.
    pub properties: BTreeMap<String, String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops receiving events and is removed.
    pub expire_at: Timestamp,
}

impl Subscription {
    /// Validates `request` into a subscription `id` of `owner` at `now`.
    ///
    /// # Errors
    /// The first bad field, named as in the JSON (`notificationDetails.deviceId`).
    pub fn from_request(
        request: SubscriptionRequest,
        id: String,
        owner: Option<String>,
        now: Timestamp,
    ) -> Result<Subscription, FieldError> {
        text("subscriberId", &request.subscriber_id, true)?;
        text("filter", &request.filter, true)?;
        if let Some(name) = &request.provider_name {
            text("providerName", name, false)?;
        }
        let details = request.notification_details;
        text("notificationDetails.deviceId", &details.device_id, true)?;
        if details.properties.len() > MAX_PROPERTIES {
            return Err(FieldError::new(
                "notificationDetails.properties",
                format!("at most {MAX_PROPERTIES} properties: send fewer"),
            ));
        }
        for (key, value) in &details.properties {
            text("notificationDetails.properties", key, true)?;
            text("notificationDetails.properties", value, false)?;
        }
        let expire = match request.expire {
            None => DEFAULT_EXPIRE_SECS,
            Some(secs @ 1..=MAX_EXPIRE_SECS) => secs,
            Some(_) => {
                return Err(FieldError::new(
                    "expire",
                    format!("expire is 1 to {MAX_EXPIRE_SECS} seconds: send a number of seconds in that range"),
                ))
            }
        };
        let channel = match details.kind.to_ascii_lowercase().as_str() {
            "comet" => {
                if owner.as_deref() != Some(details.device_id.as_str()) {
                    return Err(FieldError::new(
                        "notificationDetails.deviceId",
                        "a comet subscription's deviceId is the gms_user whose CometD clients get the events: send your own gms_user header and the same value as deviceId",
                    ));
                }
                Channel::Comet {
                    gms_user: details.device_id,
                }
            }
            "httpcb" => Channel::HttpCallback {
                url: http_url("notificationDetails.deviceId", &details.device_id)?,
            },
            "customhttp" => {
                let url = details.properties.get("url").ok_or_else(|| {
                    FieldError::new(
                        "notificationDetails.properties.url",
                        "a customhttp subscription needs the URL to POST to in notificationDetails.properties.url",
                    )
                })?;
                let url = http_url("notificationDetails.properties.url", url)?;
                if let Some(auth) = &request.authorization {
                    if auth.is_empty()
                        || auth.len() > MAX_TEXT_BYTES
                        || !auth.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                    {
                        return Err(FieldError::new(
                            "authorization",
                            "authorization is sent as an HTTP header: send printable ASCII (e.g. base64 of user:password)",
                        ));
                    }
                }
                Channel::CustomHttp {
                    url,
                    device_id: details.device_id,
                    authorization: request.authorization,
                }
            }
            _ => {
                return Err(FieldError::new(
                    "notificationDetails.type",
                    format!(
                    "type `{}` is not a channel callbackd has: send comet, httpcb or customhttp",
                    details.kind.escape_default()
                ),
                ))
            }
        };
        Ok(Subscription {
            id,
            owner,
            subscriber_id: request.subscriber_id,
            provider_name: request.provider_name,
            filter: request.filter,
            channel,
            properties: details.properties,
            created_at: now,
            expire_at: now.plus_secs(expire),
        })
    }

    /// Whether an event tagged `tag` goes to this subscription.
    pub fn matches(&self, tag: &str) -> bool {
        filter_matches(&self.filter, tag)
    }

    /// Whether the subscription is past its time at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expire_at <= now
    }
}

/// A filter matches the tag it names, or with a trailing `*` every tag that starts with what
/// comes before it.
pub fn filter_matches(filter: &str, tag: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => tag.starts_with(prefix),
        None => filter == tag,
    }
}

/// `POST /genesys/1/notification/publish`, as GMS documents it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishRequest {
    /// The message delivered (for `comet`, parsed as JSON when it is JSON).
    pub message: String,
    /// The event's tag, matched against the subscriptions' filters.
    pub tag: String,
    /// `string` (default) or `localizestring`.
    #[serde(default)]
    pub media_type: Option<MediaType>,
}

/// A published message's `mediaType` (GMS: `string` or `localizestring`). callbackd has no
/// localization file: a `localizestring` message is delivered as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// The message is the text to deliver.
    String,
    /// The message names a localized text (delivered as sent).
    Localizestring,
}

impl PublishRequest {
    /// Checks the fields.
    ///
    /// # Errors
    /// The first bad field.
    pub fn check(&self) -> Result<(), FieldError> {
        text("tag", &self.tag, true)?;
        if self.message.len() > 64 * 1024 {
            return Err(FieldError::new(
                "message",
                "a message is at most 65536 bytes: send less",
            ));
        }
        Ok(())
    }
}

fn text(field: &str, value: &str, required: bool) -> Result<(), FieldError> {
    if required && value.trim().is_empty() {
        return Err(FieldError::new(
            field,
            format!("{field} is empty: send a value"),
        ));
    }
    if value.len() > MAX_TEXT_BYTES || value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{field} is at most {MAX_TEXT_BYTES} bytes of printable text"),
        ));
    }
    Ok(())
}

fn http_url(field: &str, value: &str) -> Result<String, FieldError> {
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(FieldError::new(
            field,
            format!("{field} is the URL events are POSTed to: send an http:// URL"),
        ));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: serde_json::Value) -> SubscriptionRequest {
        serde_json::from_value(value).unwrap()
    }

    fn subscribe(
        value: serde_json::Value,
        owner: Option<&str>,
    ) -> Result<Subscription, FieldError> {
        Subscription::from_request(
            request(value),
            "s1".into(),
            owner.map(str::to_string),
            Timestamp::from_millis(1_000),
        )
    }

    #[test]
    fn filters_match_a_tag_or_a_prefix() {
        let cases = [
            ("ors.contact.1", "ors.contact.1", true),
            ("ors.contact.1", "ors.contact.12", false),
            ("ors.contact.*", "ors.contact.12", true),
            ("ors.contact.*", "ors.other", false),
            ("*", "anything", true),
        ];
        for (filter, tag, expected) in cases {
            assert_eq!(filter_matches(filter, tag), expected, "{filter} vs {tag}");
        }
    }

    #[test]
    fn each_channel_is_validated_with_the_field_named() {
        let ok = subscribe(
            json!({"subscriberId":"s","filter":"t","expire":60,
                "notificationDetails":{"deviceId":"http://example.com/h","type":"httpcb"}}),
            None,
        )
        .unwrap();
        assert_eq!(ok.channel.url(), Some("http://example.com/h"));
        assert_eq!(ok.expire_at, Timestamp::from_millis(61_000));
        let comet = subscribe(
            json!({"subscriberId":"s","filter":"t",
                "notificationDetails":{"deviceId":"alice","type":"comet"}}),
            Some("alice"),
        )
        .unwrap();
        assert_eq!(
            comet.channel,
            Channel::Comet {
                gms_user: "alice".into()
            }
        );
        assert_eq!(
            comet.expire_at,
            Timestamp::from_millis(31_000),
            "default expire"
        );

        let refused = [
            (
                json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"bob","type":"comet"}}),
                "notificationDetails.deviceId",
            ),
            (
                json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"x","type":"ios"}}),
                "notificationDetails.type",
            ),
            (
                json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"ftp://x","type":"httpcb"}}),
                "notificationDetails.deviceId",
            ),
            (
                json!({"subscriberId":"s","filter":"t","notificationDetails":{"deviceId":"x","type":"customhttp"}}),
                "notificationDetails.properties.url",
            ),
            (
                json!({"subscriberId":"","filter":"t","notificationDetails":{"deviceId":"x","type":"httpcb"}}),
                "subscriberId",
            ),
            (
                json!({"subscriberId":"s","filter":"","notificationDetails":{"deviceId":"x","type":"httpcb"}}),
                "filter",
            ),
            (
                json!({"subscriberId":"s","filter":"t","expire":0,"notificationDetails":{"deviceId":"http://x","type":"httpcb"}}),
                "expire",
            ),
            (
                json!({"subscriberId":"s","filter":"t","authorization":"a\nb","notificationDetails":{"deviceId":"d","type":"customhttp","properties":{"url":"http://x"}}}),
                "authorization",
            ),
        ];
        for (body, field) in refused {
            assert_eq!(
                subscribe(body.clone(), Some("alice")).unwrap_err().field,
                field,
                "{body}"
            );
        }
    }

    #[test]
    fn a_publish_names_its_bad_field() {
        let publish = |v: serde_json::Value| serde_json::from_value::<PublishRequest>(v);
        assert!(publish(json!({"message":"m","tag":"t"}))
            .unwrap()
            .check()
            .is_ok());
        let localized =
            publish(json!({"message":"m","tag":"t","mediaType":"localizestring"})).unwrap();
        assert_eq!(localized.media_type, Some(MediaType::Localizestring));
        assert_eq!(
            publish(json!({"message":"m","tag":""}))
                .unwrap()
                .check()
                .unwrap_err()
                .field,
            "tag"
        );
        assert!(
            publish(json!({"message":"m","tag":"t","mediaType":"xml"})).is_err(),
            "an unknown mediaType is refused when the body is read (a 400 naming it)"
        );
    }
}
