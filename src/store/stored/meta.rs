//! The `meta` tree's values, format 1: the schema version and the seeding marks.

use serde::{Deserialize, Serialize};

use super::super::codec::Versioned;

/// The schema version (the newest migration applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaVersionV1(pub u32);

impl Versioned for SchemaVersionV1 {
    const VERSION: u8 = 1;
}

/// A mark that something was done once (the configured services or agents were seeded);
/// its presence is what counts, and it is written `true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkV1(pub bool);

impl Versioned for MarkV1 {
    const VERSION: u8 = 1;
}
