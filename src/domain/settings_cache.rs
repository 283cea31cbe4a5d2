//! Typed settings parsed once per distinct set of options (issue 13: "validated and parsed
//! once, no re-parse on read").
//!
//! A stored service keeps its options as GMS wrote them, strings; [`ServiceSettings`] is their
//! typed view (the `_target` list with its skill expressions, office hours, throttles...). The
//! services of one configured service share the same options, so a read of any of them finds
//! the view parsed by the first, by a hash lookup of the options, instead of validating and
//! parsing them again. Why the typed view is kept here rather than stored with each record is
//! in `docs/decisions.md` ("Typed settings: parsed once per options, kept in memory").

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::dialog::ACCESS_CODE;
use super::option_error::OptionError;
use super::options::ServiceSettings;

/// Options a service holds for itself that no typed setting reads (a user-originated
/// callback's own access code): left out of the cache's key, so that the services of one
/// configured service still share one parse.
const OWN_OPTIONS: &[&str] = &[ACCESS_CODE];

/// Option sets remembered before the cache starts again from empty: far more than the
/// configured services of a contact center, few enough that a flood of per-request
/// overrides cannot grow it without end.
pub const DEFAULT_CAPACITY: usize = 4096;

/// The typed settings of every set of options seen, shared.
#[derive(Debug)]
pub struct SettingsCache {
    stat_servers: Arc<[String]>,
    capacity: usize,
    parsed: Mutex<HashMap<BTreeMap<String, String>, Arc<ServiceSettings>>>,
}

impl SettingsCache {
    /// A cache validating targets against `stat_servers`, keeping at most `capacity` option
    /// sets (at least one).
    pub fn new(stat_servers: impl Into<Arc<[String]>>, capacity: usize) -> Self {
        Self {
            stat_servers: stat_servers.into(),
            capacity: capacity.max(1),
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The Stat Server names targets may use.
    pub fn stat_servers(&self) -> &[String] {
        &self.stat_servers
    }

    /// The typed settings of `options`: parsed the first time these options are seen, then
    /// shared. Options that do not validate are not remembered (they are refused each time,
    /// and are rare: a configuration changed under stored services).
    ///
    /// # Errors
    /// The first bad option, named.
    pub fn settings(
        &self,
        options: &BTreeMap<String, String>,
    ) -> Result<Arc<ServiceSettings>, OptionError> {
        let shared: BTreeMap<String, String>;
        let key = if OWN_OPTIONS.iter().any(|name| options.contains_key(*name)) {
            shared = options
                .iter()
                .filter(|(name, _)| !OWN_OPTIONS.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            &shared
        } else {
            options
        };
        if let Some(found) = self.lock().get(key) {
            return Ok(found.clone());
        }
        // Parsed outside the lock: two readers of new options may both parse them, and the
        // second result replaces an equal first.
        let settings = Arc::new(ServiceSettings::from_options(key, &self.stat_servers)?);
        let mut parsed = self.lock();
        if parsed.len() >= self.capacity {
            parsed.clear();
        }
        parsed.insert(key.clone(), settings.clone());
        Ok(settings)
    }

    /// Option sets remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<BTreeMap<String, String>, Arc<ServiceSettings>>> {
        // A panic while holding the lock left a map that is still whole (inserts and clears
        // are single calls): keep using it.
        self.parsed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A valid service's options, told apart by their `_ttl`.
    fn valid(ttl: &str) -> BTreeMap<String, String> {
        options(&[("_target", "Billing@StatServer.GA"), ("_ttl", ttl)])
    }

    fn cache(capacity: usize) -> SettingsCache {
        SettingsCache::new(vec!["StatServer".to_string()], capacity)
    }

    #[test]
    fn the_same_options_share_one_parse() {
        let cache = cache(8);
        let a = valid("600");
        let first = cache.settings(&a).unwrap();
        let second = cache.settings(&a.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, &second), "parsed again");
        assert_eq!(cache.len(), 1);
        assert_eq!(
            *first,
            ServiceSettings::from_options(&a, &["StatServer".into()]).unwrap()
        );
    }

    #[test]
    fn services_told_apart_only_by_their_access_code_share_one_parse() {
        let cache = cache(8);
        let mut first = valid("600");
        first.insert(ACCESS_CODE.into(), "123456".into());
        let mut second = valid("600");
        second.insert(ACCESS_CODE.into(), "654321".into());
        let a = cache.settings(&first).unwrap();
        let b = cache.settings(&second).unwrap();
        let plain = cache.settings(&valid("600")).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &plain),
            "parsed again"
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn other_options_get_their_own_settings() {
        let cache = cache(8);
        let short = cache.settings(&valid("600")).unwrap();
        let long = cache.settings(&valid("7200")).unwrap();
        assert_ne!(short.ttl_secs, long.ttl_secs);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn bad_options_are_refused_every_time_and_not_kept() {
        let cache = cache(8);
        let bad = options(&[("_target", "Billing@NoSuchServer.GA"), ("_ttl", "600")]);
        for _ in 0..2 {
            let err = cache.settings(&bad).unwrap_err();
            assert!(err.to_string().contains("_target"), "{err}");
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_starts_again_and_still_answers() {
        let cache = cache(2);
        for ttl in ["601", "602", "603"] {
            cache.settings(&valid(ttl)).unwrap();
        }
        assert_eq!(cache.len(), 1, "cleared when full, then the third kept");
        let again = cache.settings(&valid("601")).unwrap();
        assert_eq!(again.ttl_secs, 601);
    }
}
