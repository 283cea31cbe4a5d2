//! GMS's throttles of callback creation (Callback queue management options).
//!
//! - `_throttle_callbacks_per_service_1` callbacks per `_throttle_ttl_1` seconds, and the same
//!   with `_2`: a service takes at most so many creates in an interval. An interval begins
//!   with the first create after the previous one ended, as GMS counts it.
//! - `_throttle_request_parameters_limit` callbacks per UTC day for each value of each request
//!   parameter named in `_throttle_request_parameters` (`_customer_number` by default).
//!
//! This module parses the options once (a bad value is an [`OptionError`] naming it), and
//! decides from counts it is given; the counts themselves live in the store and are read and
//! moved by `app::limits`. It words the refusals exactly as GMS does.

use std::collections::BTreeMap;
use std::fmt;

use super::option_error::OptionError;
use super::time::Timestamp;

/// `_throttle_callbacks_per_service_1` and `_2` when only their `_throttle_ttl_*` is set.
pub const DEFAULT_CALLBACKS_PER_SERVICE: [u64; 2] = [500, 1000];

/// `_throttle_ttl_1` and `_2` when only their `_throttle_callbacks_per_service_*` is set.
pub const DEFAULT_TTL_SECS: [u64; 2] = [300, 3600];

/// `_throttle_request_parameters_limit` when only `_throttle_request_parameters` is set.
pub const DEFAULT_REQUEST_PARAMETERS_LIMIT: u64 = 6;

/// `_throttle_request_parameters` when only its limit is set (or it is empty).
pub const DEFAULT_REQUEST_PARAMETER: &str = "_customer_number";

/// The most parameters `_throttle_request_parameters` may name.
pub const MAX_REQUEST_PARAMETERS: usize = 16;

const DAY_MILLIS: u64 = 86_400_000;

/// The throttles in force for a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttles {
    /// The interval throttles in force, throttle 1 first (its refusal wins when both refuse).
    pub intervals: Vec<IntervalThrottle>,
    /// The daily limit per request-parameter value, if in force.
    pub per_parameter: Option<ParameterThrottle>,
}

/// One of `_throttle_callbacks_per_service_N` / `_throttle_ttl_N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalThrottle {
    /// `N`: 1 or 2 (also the key of its count in the store).
    pub slot: u8,
    /// Callbacks an interval takes.
    pub max: u64,
    /// The interval's length in seconds (never 0: a 0 turns the throttle off).
    pub ttl_secs: u64,
}

/// `_throttle_request_parameters` / `_throttle_request_parameters_limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterThrottle {
    /// The request parameters counted: `_customer_number` or user-data keys.
    pub parameters: Vec<String>,
    /// Callbacks a day for one value of one parameter.
    pub limit: u64,
}

/// The count of one interval throttle: when its interval began and how many creates it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The first create of the interval.
    pub start: Timestamp,
    /// Creates counted in it.
    pub count: u64,
}

/// Why a create is refused (503), worded as GMS words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleRefusal {
    /// `_max_queued_callbacks_per_service` SCHEDULED and QUEUED callbacks are waiting.
    QueueFull {
        /// The configured service.
        service: String,
    },
    /// An interval throttle's interval took its callbacks.
    Interval {
        /// The configured service.
        service: String,
        /// The interval's length.
        ttl_secs: u64,
    },
    /// A parameter's value asked for its callbacks today.
    Parameter {
        /// The request parameter (`_customer_number`).
        parameter: String,
        /// Its value in the request.
        value: String,
        /// `_throttle_request_parameters_limit`.
        limit: u64,
    },
}

impl fmt::Display for ThrottleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThrottleRefusal::QueueFull { service } => {
                write!(f, "Limit of queued callbacks for {service} is reached.")
            }
            ThrottleRefusal::Interval { service, ttl_secs } => write!(
                f,
                "Limit of queued callbacks for {service} is reached for interval {ttl_secs}s."
            ),
            ThrottleRefusal::Parameter {
                parameter,
                value,
                limit,
            } => write!(
                f,
                "Callback for {parameter}={value} rejected because previous callbacks for this parameter were requested for more than {limit} times today."
            ),
        }
    }
}

impl Throttles {
    /// Reads the throttle options. A throttle is in force when either of its two options is
    /// set; the other then takes GMS's default. `_throttle_ttl_N=0` turns throttle N off.
    ///
    /// # Errors
    /// A value that is not a whole number, or a parameter name that is not a request
    /// parameter, named.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let mut intervals = Vec::new();
        for slot in [1u8, 2] {
            let max_name = format!("_throttle_callbacks_per_service_{slot}");
            let ttl_name = format!("_throttle_ttl_{slot}");
            let max = number(options, &max_name)?;
            let ttl = number(options, &ttl_name)?;
            if max.is_none() && ttl.is_none() {
                continue;
            }
            let index = usize::from(slot - 1);
            let ttl_secs = ttl.unwrap_or(DEFAULT_TTL_SECS[index]);
            if ttl_secs == 0 {
                continue;
            }
            intervals.push(IntervalThrottle {
                slot,
                max: max.unwrap_or(DEFAULT_CALLBACKS_PER_SERVICE[index]),
                ttl_secs,
            });
        }
        let limit = number(options, "_throttle_request_parameters_limit")?;
        let names = options
            .get("_throttle_request_parameters")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        let per_parameter = if limit.is_none() && names.is_none() {
            None
        } else {
            let parameters = match names {
                Some(list) => parse_parameters(list)?,
                None => vec![DEFAULT_REQUEST_PARAMETER.to_string()],
            };
            Some(ParameterThrottle {
                parameters,
                limit: limit.unwrap_or(DEFAULT_REQUEST_PARAMETERS_LIMIT),
            })
        };
        Ok(Throttles {
            intervals,
            per_parameter,
        })
    }

    /// Whether any throttle is in force.
    pub fn any(&self) -> bool {
        !self.intervals.is_empty() || self.per_parameter.is_some()
    }
}

impl IntervalThrottle {
    /// The creates counted at `now` in the interval `window` began: none once it ended.
    pub fn counted(&self, window: Option<Window>, now: Timestamp) -> u64 {
        match window {
            Some(window) if self.open(window, now) => window.count,
            _ => 0,
        }
    }

    /// The refusal of a create at `now` for `service`, if the interval is full.
    pub fn check(
        &self,
        service: &str,
        window: Option<Window>,
        now: Timestamp,
    ) -> Result<(), ThrottleRefusal> {
        if self.counted(window, now) >= self.max {
            return Err(ThrottleRefusal::Interval {
                service: service.to_string(),
                ttl_secs: self.ttl_secs,
            });
        }
        Ok(())
    }

    /// The count after a create at `now`: one more in the open interval, or a new interval
    /// beginning now.
    pub fn admit(&self, window: Option<Window>, now: Timestamp) -> Window {
        match window {
            Some(window) if self.open(window, now) => Window {
                start: window.start,
                count: window.count.saturating_add(1),
            },
            _ => Window {
                start: now,
                count: 1,
            },
        }
    }

    fn open(&self, window: Window, now: Timestamp) -> bool {
        now >= window.start
            && now.as_millis() - window.start.as_millis() < self.ttl_secs.saturating_mul(1000)
    }
}

impl ParameterThrottle {
    /// The counted parameters this request carries, with their values: `_customer_number`
    /// from `customer_number`, other names from `user_data`; empty values are not counted.
    pub fn values<'a>(
        &'a self,
        customer_number: Option<&'a str>,
        user_data: &'a BTreeMap<String, String>,
    ) -> Vec<(&'a str, &'a str)> {
        self.parameters
            .iter()
            .filter_map(|name| {
                let value = if name == DEFAULT_REQUEST_PARAMETER {
                    customer_number
                } else {
                    user_data.get(name).map(String::as_str)
                };
                value
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| (name.as_str(), v))
            })
            .collect()
    }

    /// The refusal of a create whose `parameter` has `value` and was counted `today` times.
    pub fn check(&self, parameter: &str, value: &str, today: u64) -> Result<(), ThrottleRefusal> {
        if today >= self.limit {
            return Err(ThrottleRefusal::Parameter {
                parameter: parameter.to_string(),
                value: value.to_string(),
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// The UTC day of `at`, counted from the Unix epoch: what "today" means for
/// `_throttle_request_parameters_limit`.
pub fn day_of(at: Timestamp) -> u32 {
    u32::try_from(at.as_millis() / DAY_MILLIS).unwrap_or(u32::MAX)
}

fn number(options: &BTreeMap<String, String>, name: &str) -> Result<Option<u64>, OptionError> {
    let Some(value) = options
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    value.parse::<u64>().map(Some).map_err(|_| {
        OptionError::new(
            name,
            format!("`{value}` is not valid: write a whole number, e.g. \"10\""),
        )
    })
}

fn parse_parameters(list: &str) -> Result<Vec<String>, OptionError> {
    const NAME: &str = "_throttle_request_parameters";
    let mut parameters: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.len() > 128 || name.chars().any(char::is_control) {
            return Err(OptionError::new(
                NAME,
                "parameter names must be 1-128 printable characters",
            ));
        }
        if name.starts_with('_') && name != DEFAULT_REQUEST_PARAMETER {
            return Err(OptionError::new(
                NAME,
                format!("`{name}` is not a request parameter callbackd counts: use _customer_number or user-data keys (without `_`)"),
            ));
        }
        if !parameters.iter().any(|p| p == name) {
            parameters.push(name.to_string());
        }
    }
    if parameters.is_empty() {
        parameters.push(DEFAULT_REQUEST_PARAMETER.to_string());
    }
    if parameters.len() > MAX_REQUEST_PARAMETERS {
        return Err(OptionError::new(
            NAME,
            format!("names more than {MAX_REQUEST_PARAMETERS} parameters: count fewer"),
        ));
    }
    Ok(parameters)
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

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn no_option_means_no_throttle() {
        let throttles = Throttles::from_options(&options(&[("_ttl", "60")])).unwrap();
        assert!(!throttles.any());
    }

    #[test]
    fn a_throttle_half_set_takes_gms_defaults_for_the_other_half() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [(u8, u64, u64)]);
        let cases: &[Case] = &[
            (
                &[("_throttle_callbacks_per_service_1", "2")],
                &[(1, 2, 300)],
            ),
            (&[("_throttle_ttl_1", "10")], &[(1, 500, 10)]),
            (&[("_throttle_ttl_2", "10")], &[(2, 1000, 10)]),
            (
                &[
                    ("_throttle_callbacks_per_service_1", "2"),
                    ("_throttle_ttl_1", "14"),
                    ("_throttle_callbacks_per_service_2", "3"),
                    ("_throttle_ttl_2", "7"),
                ],
                &[(1, 2, 14), (2, 3, 7)],
            ),
            // A ttl of 0 turns the throttle off (GMS's tests create freely with it).
            (
                &[
                    ("_throttle_callbacks_per_service_1", "2"),
                    ("_throttle_ttl_1", "0"),
                ],
                &[],
            ),
            // An empty value is as if unset.
            (&[("_throttle_callbacks_per_service_1", " ")], &[]),
        ];
        for (pairs, expected) in cases {
            let throttles = Throttles::from_options(&options(pairs)).unwrap();
            let got: Vec<(u8, u64, u64)> = throttles
                .intervals
                .iter()
                .map(|t| (t.slot, t.max, t.ttl_secs))
                .collect();
            assert_eq!(got, *expected, "{pairs:?}");
        }
    }

    #[test]
    fn bad_throttle_options_are_named() {
        let cases: &[(&str, &str)] = &[
            ("_throttle_callbacks_per_service_1", "many"),
            ("_throttle_ttl_1", "-5"),
            ("_throttle_callbacks_per_service_2", "1.5"),
            ("_throttle_ttl_2", "5m"),
            ("_throttle_request_parameters_limit", "six"),
            ("_throttle_request_parameters", "_desired_time"),
            ("_throttle_request_parameters", "a\u{7}b"),
        ];
        for (name, value) in cases {
            let err = Throttles::from_options(&options(&[(name, value)])).expect_err(name);
            assert_eq!(err.option, *name, "{name}={value:?}: {err}");
        }
    }

    #[test]
    fn parameter_throttle_defaults_to_six_per_customer_number() {
        let limit_only =
            Throttles::from_options(&options(&[("_throttle_request_parameters_limit", "2")]))
                .unwrap();
        assert_eq!(
            limit_only.per_parameter,
            Some(ParameterThrottle {
                parameters: vec!["_customer_number".into()],
                limit: 2
            })
        );
        let names_only = Throttles::from_options(&options(&[(
            "_throttle_request_parameters",
            "_customer_number, account,account",
        )]))
        .unwrap();
        assert_eq!(
            names_only.per_parameter,
            Some(ParameterThrottle {
                parameters: vec!["_customer_number".into(), "account".into()],
                limit: 6
            })
        );
    }

    #[test]
    fn an_interval_begins_with_its_first_create_and_ends_ttl_later() {
        let throttle = IntervalThrottle {
            slot: 1,
            max: 2,
            ttl_secs: 10,
        };
        let first = throttle.admit(None, at(100));
        assert_eq!(
            first,
            Window {
                start: at(100),
                count: 1
            }
        );
        let second = throttle.admit(Some(first), at(105));
        assert_eq!(second.count, 2);
        assert!(throttle.check("svc", Some(second), at(109)).is_err());
        assert_eq!(throttle.counted(Some(second), at(109)), 2);
        // At start + ttl the interval is over: a create opens the next one.
        assert_eq!(throttle.counted(Some(second), at(110)), 0);
        assert!(throttle.check("svc", Some(second), at(110)).is_ok());
        assert_eq!(
            throttle.admit(Some(second), at(110)),
            Window {
                start: at(110),
                count: 1
            }
        );
        // A clock set back before the interval's start does not count it.
        assert_eq!(throttle.counted(Some(second), at(50)), 0);
    }

    #[test]
    fn refusals_are_worded_as_gms_words_them() {
        let cases = [
            (
                ThrottleRefusal::QueueFull {
                    service: "cb".into(),
                },
                "Limit of queued callbacks for cb is reached.",
            ),
            (
                ThrottleRefusal::Interval {
                    service: "cb".into(),
                    ttl_secs: 14,
                },
                "Limit of queued callbacks for cb is reached for interval 14s.",
            ),
            (
                ThrottleRefusal::Parameter {
                    parameter: "_customer_number".into(),
                    value: "5115".into(),
                    limit: 2,
                },
                "Callback for _customer_number=5115 rejected because previous callbacks for this parameter were requested for more than 2 times today.",
            ),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text);
        }
    }

    #[test]
    fn a_limit_of_zero_refuses_every_value() {
        let throttle = ParameterThrottle {
            parameters: vec!["_customer_number".into()],
            limit: 0,
        };
        assert!(throttle.check("_customer_number", "1", 0).is_err());
    }

    #[test]
    fn counted_values_come_from_the_number_and_user_data() {
        let throttle = ParameterThrottle {
            parameters: vec!["_customer_number".into(), "account".into(), "absent".into()],
            limit: 1,
        };
        let user_data = options(&[("account", "A-1"), ("other", "x")]);
        assert_eq!(
            throttle.values(Some("5115"), &user_data),
            vec![("_customer_number", "5115"), ("account", "A-1")]
        );
        assert_eq!(
            throttle.values(Some(" "), &BTreeMap::new()),
            Vec::<(&str, &str)>::new()
        );
    }

    #[test]
    fn days_are_utc_days() {
        assert_eq!(day_of(Timestamp::from_millis(DAY_MILLIS - 1)), 0);
        assert_eq!(day_of(Timestamp::from_millis(DAY_MILLIS)), 1);
    }
}
