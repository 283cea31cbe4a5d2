//! GMS's checks of a callback's `_customer_number`: `_default_country` (the country of a
//! number written without `+` and country code), `_disallow_impossible_phone_numbers` and
//! `_disallow_premium_phone_numbers`.
//!
//! Numbers are read by the `phonenumber` crate, the Rust port of Google's libphonenumber
//! (the library GMS's own phone-number service is built on), with its metadata compiled into
//! the binary. The options are parsed once, with the service; a refusal is worded as GMS's
//! `CallbackExceptionNumber` words it.

use std::collections::BTreeMap;
use std::fmt;

use phonenumber::country;
use phonenumber::Type;

use super::option_error::OptionError;

/// What a service checks about a customer number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneRules {
    /// `_default_country`, a CLDR region code such as `US`.
    pub default_country: Option<country::Id>,
    /// `_disallow_impossible_phone_numbers`: refuse a number that is not a valid number.
    pub disallow_impossible: bool,
    /// `_disallow_premium_phone_numbers`: refuse a premium-rate number.
    pub disallow_premium: bool,
}

/// Why a customer number is refused (400, `CallbackExceptionNumber`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneRefusal {
    /// Not a valid number (`_disallow_impossible_phone_numbers`).
    Impossible {
        /// The number as sent.
        number: String,
    },
    /// A premium-rate number (`_disallow_premium_phone_numbers`).
    Premium {
        /// The number as sent.
        number: String,
    },
}

impl fmt::Display for PhoneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneRefusal::Impossible { number } => write!(
                f,
                "Customer Number [{number}] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers"
            ),
            PhoneRefusal::Premium { number } => write!(
                f,
                "Customer Number [{number}] is disallowed, because it's a premium number. Check option _disallow_premium_phone_numbers"
            ),
        }
    }
}

impl PhoneRules {
    /// Reads the three options.
    ///
    /// # Errors
    /// A `_default_country` that is not a region code, a flag that is not `true` or
    /// `false`, or a flag set without `_default_country` (GMS cannot validate phone numbers
    /// without knowing the country), named.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let flag = |name: &str| -> Result<bool, OptionError> {
            match options.get(name).map(|v| v.trim()) {
                None | Some("") => Ok(false),
                Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(OptionError::new(
                    name,
                    format!("`{v}` is not valid: write true or false"),
                )),
            }
        };
        let disallow_impossible = flag("_disallow_impossible_phone_numbers")?;
        let disallow_premium = flag("_disallow_premium_phone_numbers")?;
        let default_country = match options
            .get("_default_country")
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            None => None,
            Some(code) => Some(parse_country(code)?),
        };
        if default_country.is_none() {
            let set = [
                (disallow_impossible, "_disallow_impossible_phone_numbers"),
                (disallow_premium, "_disallow_premium_phone_numbers"),
            ];
            if let Some((_, name)) = set.iter().find(|(on, _)| *on) {
                return Err(OptionError::new(
                    "_default_country",
                    format!("is not configured. But option {name} is set. We cannot validate phone numbers without knowing the country."),
                ));
            }
        }
        Ok(PhoneRules {
            default_country,
            disallow_impossible,
            disallow_premium,
        })
    }

    /// Whether any number is refused by these rules.
    pub fn any(&self) -> bool {
        self.disallow_impossible || self.disallow_premium
    }

    /// Checks `number` (the request's `_customer_number`): a number written without a
    /// country code is read as a number of `_default_country`.
    ///
    /// # Errors
    /// The number is not valid, or is a premium-rate number, and the service refuses such.
    pub fn check(&self, number: &str) -> Result<(), PhoneRefusal> {
        if !self.any() {
            return Ok(());
        }
        let number = number.trim();
        let parsed = phonenumber::parse(self.default_country, number).ok();
        let valid = parsed.as_ref().is_some_and(phonenumber::is_valid);
        if self.disallow_impossible && !valid {
            return Err(PhoneRefusal::Impossible {
                number: number.to_string(),
            });
        }
        let premium = parsed.as_ref().is_some_and(|parsed| {
            parsed.number_type(&phonenumber::metadata::DATABASE) == Type::PremiumRate
        });
        if self.disallow_premium && premium {
            return Err(PhoneRefusal::Premium {
                number: number.to_string(),
            });
        }
        Ok(())
    }
}

fn parse_country(code: &str) -> Result<country::Id, OptionError> {
    code.to_ascii_uppercase()
        .parse::<country::Id>()
        .map_err(|_| {
            OptionError::new(
                "_default_country",
                format!("`{code}` is not a country: write a two-letter region code such as US, FR or DE"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(pairs: &[(&str, &str)]) -> Result<PhoneRules, OptionError> {
        PhoneRules::from_options(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn strict() -> PhoneRules {
        rules(&[
            ("_default_country", "US"),
            ("_disallow_impossible_phone_numbers", "true"),
            ("_disallow_premium_phone_numbers", "true"),
        ])
        .unwrap()
    }

    #[test]
    fn national_and_international_numbers_are_accepted() {
        for number in [
            "6504661100",
            "(650) 466-1100",
            "+16504661100",
            "+33 6 04 12 04 05",
        ] {
            assert_eq!(strict().check(number), Ok(()), "{number}");
        }
    }

    #[test]
    fn impossible_and_premium_numbers_are_refused_in_gms_words() {
        let cases = [
            (
                "111",
                "Customer Number [111] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers",
            ),
            (
                "not a number",
                "Customer Number [not a number] is disallowed, because it is invalid. Check option _disallow_impossible_phone_numbers",
            ),
            (
                "+19005551234",
                "Customer Number [+19005551234] is disallowed, because it's a premium number. Check option _disallow_premium_phone_numbers",
            ),
            (
                "900 555 1234",
                "Customer Number [900 555 1234] is disallowed, because it's a premium number. Check option _disallow_premium_phone_numbers",
            ),
        ];
        for (number, message) in cases {
            let refusal = strict().check(number).expect_err(number);
            assert_eq!(refusal.to_string(), message);
        }
    }

    #[test]
    fn each_flag_refuses_only_its_own_kind() {
        let impossible_only = rules(&[
            ("_default_country", "US"),
            ("_disallow_impossible_phone_numbers", "true"),
        ])
        .unwrap();
        assert_eq!(impossible_only.check("+19005551234"), Ok(()));
        let premium_only = rules(&[
            ("_default_country", "us"),
            ("_disallow_premium_phone_numbers", "true"),
        ])
        .unwrap();
        assert_eq!(premium_only.check("111"), Ok(()));
        assert!(premium_only.check("+19005551234").is_err());
        let none = rules(&[("_default_country", "US")]).unwrap();
        assert_eq!(none.check("111"), Ok(()));
    }

    #[test]
    fn bad_options_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("_default_country", "USA")], "_default_country"),
            (&[("_default_country", "Q1")], "_default_country"),
            (
                &[("_disallow_impossible_phone_numbers", "yes")],
                "_disallow_impossible_phone_numbers",
            ),
            (
                &[("_disallow_premium_phone_numbers", "true")],
                "_default_country",
            ),
            (
                &[
                    ("_default_country", ""),
                    ("_disallow_impossible_phone_numbers", "true"),
                ],
                "_default_country",
            ),
        ];
        for (pairs, option) in cases {
            let err = rules(pairs).expect_err(option);
            assert_eq!(err.option, *option, "{pairs:?}: {err}");
        }
        let err = rules(&[("_disallow_premium_phone_numbers", "true")]).unwrap_err();
        assert_eq!(
            err.message,
            "is not configured. But option _disallow_premium_phone_numbers is set. We cannot validate phone numbers without knowing the country."
        );
    }
}
