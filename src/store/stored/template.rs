//! Configured services (`templates` tree), format 1.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::codec::{self, Versioned};
use super::super::StoreError;
use super::service::PresetV1;
use super::text;
use crate::domain::options::ConfiguredService;

/// A configured service as format 1 stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateV1<'a> {
    name: Cow<'a, str>,
    preset: PresetV1,
    options: Cow<'a, BTreeMap<String, String>>,
}

impl Versioned for TemplateV1<'_> {
    const VERSION: u8 = 1;
}

/// `service` as stored.
///
/// # Errors
/// The value cannot be encoded.
pub(crate) fn encode(service: &ConfiguredService) -> Result<Vec<u8>, StoreError> {
    codec::write(&TemplateV1::from(service))
}

/// A configured service read back; `what` names it in errors.
///
/// # Errors
/// The value is not a format-1 configured service.
pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<ConfiguredService, StoreError> {
    codec::read::<TemplateV1>(bytes, what).map(ConfiguredService::from)
}

impl<'a> From<&'a ConfiguredService> for TemplateV1<'a> {
    fn from(service: &'a ConfiguredService) -> Self {
        Self {
            name: text(&service.name),
            preset: service.preset.into(),
            options: Cow::Borrowed(&service.options),
        }
    }
}

impl From<TemplateV1<'_>> for ConfiguredService {
    fn from(service: TemplateV1<'_>) -> Self {
        Self {
            name: service.name.into_owned(),
            preset: service.preset.into(),
            options: service.options.into_owned(),
        }
    }
}
