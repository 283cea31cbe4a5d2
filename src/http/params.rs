//! The parameter and reply types that several routes share in the OpenAPI document (`openapi.rs`): a
//! route names them in its `#[utoipa::path(params(...))]`, and the document collects the
//! routes. They describe, they are not read: the filters in `mod.rs` and `form.rs` parse the
//! real values. Kept apart from `openapi.rs` so that the routes depend on these and the document
//! on the routes, and not round in a circle.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `gms_user` header of the customer-facing routes: who the end user is. Required when a
/// service is created (unless `[security] allow_anonymous_services`); a service is reachable
/// only with its owner's value (403 otherwise).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // describes `super::gms_user_header` for the document only
pub struct GmsUser {
    /// The end user's identity, at most 256 bytes, given once.
    #[param(max_length = 256, example = "customer-1")]
    gms_user: Option<String>,
}

/// `{id}`: a service id, as the server chose it when the service was created.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // describes the `String` path segment of the routes for the document only
pub struct ServiceId {
    /// The service id (a UUID).
    id: String,
}

/// The fields of a form whose fields the route does not read (GMS clients send some anyway).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // describes the body for the document only
pub struct NoFields {
    #[serde(flatten)]
    fields: std::collections::BTreeMap<String, String>,
}

/// `{"deleted": "<name>"}`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // describes the reply for the OpenAPI document only
pub struct Deleted {
    deleted: String,
}
