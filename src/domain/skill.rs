//! URS skill expressions: the `<expr>` in a `?:<expr>@StatServer.GA` routing target.
//!
//! This module owns three things and nothing else:
//! - parsing an expression such as `English>=5 & Loans=2` into a [`SkillExpr`] tree
//!   ([`SkillExpr::parse`]),
//! - printing a tree back in a canonical form that parses to the same tree
//!   (`Display`),
//! - deciding whether one agent's skill levels satisfy a tree ([`SkillExpr::matches`]).
//!
//! It knows nothing about targets or Stat Servers; `super::target` handles those.
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! expr       := or
//! or         := and ( '|' and )*
//! and        := unary ( ('&' | '&;') unary )*      "&;" is read as "&" (the GMS docs print it)
//! unary      := '!' unary | '(' expr ')' | compare
//! compare    := skill_name op integer
//! op         := '=' | '!=' | '<' | '<=' | '>' | '>='
//! skill_name := one or more of [A-Za-z0-9_.-], not starting with a digit
//! integer    := optional '-' then digits, fits i64
//! ```
//!
//! `!` binds tighter than `&`, and `&` tighter than `|`; `&` and `|` group to the left,
//! so `a=1&b=1&c=1` is `And(And(a, b), c)`.
//!
//! Limits: `(` and `!` may nest at most [`MAX_NESTING_DEPTH`] levels, and an expression
//! holds at most [`MAX_COMPARISONS`] comparisons. Together they bound the depth of every
//! tree [`SkillExpr::parse`] returns, so the recursive walks over it (matching, printing,
//! comparing, dropping) cannot overflow the stack.

use std::fmt;

use thiserror::Error;

/// How many `(` and `!` may be nested inside each other before parsing fails.
pub const MAX_NESTING_DEPTH: usize = 32;

/// How many comparisons one expression may contain before parsing fails.
pub const MAX_COMPARISONS: usize = 256;

/// A parsed skill expression.
///
/// Build one with [`SkillExpr::parse`]; print it with `Display` to get the canonical
/// text form (for parsed trees, `parse(&expr.to_string()) == Ok(expr)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillExpr {
    /// `skill op level`, e.g. `English>=5`.
    Compare {
        /// The skill name, e.g. `English`.
        skill: String,
        /// How the agent's level is compared with `level`.
        op: CompareOp,
        /// The level written in the expression.
        level: i64,
    },
    /// `!inner`: true when `inner` is false.
    Not(Box<SkillExpr>),
    /// `left & right`: true when both are true.
    And(Box<SkillExpr>, Box<SkillExpr>),
    /// `left | right`: true when either is true.
    Or(Box<SkillExpr>, Box<SkillExpr>),
}

/// A comparison operator between an agent's skill level and a written level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Operator spellings, two-character ones first so `<=` is not read as `<`.
const OPERATORS: [(&str, CompareOp); 6] = [
    ("!=", CompareOp::Ne),
    ("<=", CompareOp::Le),
    (">=", CompareOp::Ge),
    ("=", CompareOp::Eq),
    ("<", CompareOp::Lt),
    (">", CompareOp::Gt),
];

impl CompareOp {
    /// The operator as written in an expression, e.g. `">="`.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    /// Whether `actual op wanted` is true, e.g. `Ge.holds(7, 5)` is `7 >= 5`.
    pub fn holds(self, actual: i64, wanted: i64) -> bool {
        match self {
            CompareOp::Eq => actual == wanted,
            CompareOp::Ne => actual != wanted,
            CompareOp::Lt => actual < wanted,
            CompareOp::Le => actual <= wanted,
            CompareOp::Gt => actual > wanted,
            CompareOp::Ge => actual >= wanted,
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// Why a skill expression could not be parsed.
///
/// Offsets are byte offsets into `input`, the expression text that was parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkillExprError {
    /// The expression is empty or only whitespace.
    #[error("skill expression is empty: write at least one comparison such as `English>=5`")]
    Empty,

    /// A character that cannot appear at this point.
    #[error("unexpected character {found:?} at byte {offset} of `{input}`: expected {expected}")]
    UnexpectedChar {
        /// The character found.
        found: char,
        /// Where it was found.
        offset: usize,
        /// What would have been valid here.
        expected: &'static str,
        /// The whole expression.
        input: String,
    },

    /// The expression stops where more was needed, e.g. `English=1 &`.
    #[error("skill expression `{input}` ends too early at byte {offset}: expected {expected}")]
    UnexpectedEnd {
        /// The end of the expression.
        offset: usize,
        /// What would have been valid here.
        expected: &'static str,
        /// The whole expression.
        input: String,
    },

    /// A skill name without a comparison operator after it, e.g. `English 20`.
    #[error(
        "skill `{skill}` is not followed by a comparison operator at byte {offset} of `{input}`: \
         write one of =, !=, <, <=, >, >= and a level right after the name, e.g. `{skill}>=5` \
         (skill names may contain only letters, digits, `_`, `.` and `-`)"
    )]
    MissingOperator {
        /// The skill name read so far.
        skill: String,
        /// Where the operator was expected.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// An operator without a level after it, e.g. `English=`.
    #[error(
        "comparison `{skill}{op}` has no level at byte {offset} of `{input}`: \
         write an integer right after `{op}`, e.g. `{skill}{op}5`"
    )]
    MissingLevel {
        /// The skill being compared.
        skill: String,
        /// The operator that has no level.
        op: CompareOp,
        /// Where the level was expected.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// A level that is not an integer, e.g. `English=high` or `English=1.5`.
    #[error(
        "level `{text}` at byte {offset} of `{input}` is not an integer: \
         write a whole number such as `20` or `-1`"
    )]
    LevelNotInteger {
        /// The level as written.
        text: String,
        /// Where it starts.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// A level with too many digits for a 64-bit integer.
    #[error(
        "level `{text}` at byte {offset} of `{input}` is out of range: \
         use a number between {min} and {max}",
        min = i64::MIN,
        max = i64::MAX
    )]
    LevelOutOfRange {
        /// The level as written.
        text: String,
        /// Where it starts.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// A `(` without a matching `)`.
    #[error("`(` at byte {offset} of `{input}` is never closed: add a matching `)`")]
    UnclosedParen {
        /// Where the `(` is.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// A `)` without a matching `(`.
    #[error(
        "`)` at byte {offset} of `{input}` has no matching `(`: remove it or add a `(` before it"
    )]
    UnmatchedCloseParen {
        /// Where the `)` is.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// Text after a complete expression, e.g. the `Loans=2` in `English=1 Loans=2`.
    #[error(
        "unexpected `{rest}` at byte {offset} of `{input}` after a complete expression: \
         join comparisons with `&` or `|`, or remove the extra text"
    )]
    TrailingInput {
        /// Everything from the first unexpected character on.
        rest: String,
        /// Where it starts.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// `(` and `!` nested more than [`MAX_NESTING_DEPTH`] levels.
    #[error(
        "skill expression `{input}` nests `(` and `!` more than {max} levels deep at byte {offset}: \
         remove redundant parentheses or negations",
        max = MAX_NESTING_DEPTH
    )]
    TooDeep {
        /// Where the nesting limit was crossed.
        offset: usize,
        /// The whole expression.
        input: String,
    },

    /// More than [`MAX_COMPARISONS`] comparisons.
    #[error(
        "skill expression `{input}` has more than {max} comparisons (limit reached at byte {offset}): \
         simplify it or split it across several targets",
        max = MAX_COMPARISONS
    )]
    TooManyComparisons {
        /// Where the comparison over the limit starts.
        offset: usize,
        /// The whole expression.
        input: String,
    },
}

/// What may start a term; used in error messages.
const EXPECTED_TERM: &str = "a comparison such as `English>=5`, `!` or `(` \
     (skill names use letters, digits, `_`, `.` and `-` and may not start with a digit)";

/// What may follow a term inside parentheses; used in error messages.
const EXPECTED_AFTER_TERM: &str = "`&`, `|` or `)`";

impl SkillExpr {
    /// Parses a skill expression such as `English>=5 & !(Loans<2)`.
    ///
    /// `&;` is accepted as `&`. Never panics.
    ///
    /// # Errors
    ///
    /// Any input that does not match the grammar in the module docs, or that exceeds
    /// [`MAX_NESTING_DEPTH`] or [`MAX_COMPARISONS`], gives a [`SkillExprError`] naming
    /// the byte offset and the fix.
    pub fn parse(input: &str) -> Result<SkillExpr, SkillExprError> {
        if input.trim().is_empty() {
            return Err(SkillExprError::Empty);
        }
        let mut parser = Parser {
            input,
            pos: 0,
            depth: 0,
            comparisons: 0,
        };
        let expr = parser.parse_or()?;
        parser.skip_whitespace();
        match parser.peek() {
            None => Ok(expr),
            Some(')') => Err(SkillExprError::UnmatchedCloseParen {
                offset: parser.pos,
                input: input.to_owned(),
            }),
            Some(_) => Err(SkillExprError::TrailingInput {
                rest: parser.rest().to_owned(),
                offset: parser.pos,
                input: input.to_owned(),
            }),
        }
    }

    /// Whether an agent satisfies this expression.
    ///
    /// `level_of(skill)` returns the agent's level for `skill`, or `None` when the
    /// agent lacks the skill. A comparison against a missing skill is false whatever
    /// the operator (so `English!=1` is false and `!English=1` is true for an agent
    /// without English). Does not allocate.
    pub fn matches(&self, level_of: impl Fn(&str) -> Option<i64> + Copy) -> bool {
        match self {
            SkillExpr::Compare { skill, op, level } => {
                level_of(skill).is_some_and(|actual| op.holds(actual, *level))
            }
            SkillExpr::Not(inner) => !inner.matches(level_of),
            SkillExpr::And(left, right) => left.matches(level_of) && right.matches(level_of),
            SkillExpr::Or(left, right) => left.matches(level_of) || right.matches(level_of),
        }
    }
}

/// Prints the canonical form: no spaces, `&` for and, and parentheses only where
/// the tree differs from the default precedence and left grouping, e.g.
/// `!(a=1|b=2)&c>=3`.
impl fmt::Display for SkillExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillExpr::Compare { skill, op, level } => write!(f, "{skill}{op}{level}"),
            SkillExpr::Not(inner) => {
                let needs_parens = matches!(**inner, SkillExpr::And(..) | SkillExpr::Or(..));
                f.write_str("!")?;
                write_operand(f, inner, needs_parens)
            }
            SkillExpr::And(left, right) => {
                write_operand(f, left, matches!(**left, SkillExpr::Or(..)))?;
                f.write_str("&")?;
                let needs_parens = matches!(**right, SkillExpr::And(..) | SkillExpr::Or(..));
                write_operand(f, right, needs_parens)
            }
            SkillExpr::Or(left, right) => {
                write_operand(f, left, false)?;
                f.write_str("|")?;
                write_operand(f, right, matches!(**right, SkillExpr::Or(..)))
            }
        }
    }
}

/// Writes `expr`, wrapped in parentheses when `parens` is true.
fn write_operand(f: &mut fmt::Formatter<'_>, expr: &SkillExpr, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

/// A recursive-descent parser over the expression text; one function per grammar rule.
struct Parser<'a> {
    /// The whole expression.
    input: &'a str,
    /// Byte offset of the next unread character; always on a char boundary.
    pos: usize,
    /// How many `(` and `!` enclose the current position.
    depth: usize,
    /// How many comparisons have been started so far.
    comparisons: usize,
}

impl<'a> Parser<'a> {
    /// The unread part of the input.
    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or("")
    }

    /// The next unread character, if any.
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Consumes `c`, which must be the next character.
    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    /// Consumes characters while `keep` says so and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            self.bump(c);
        }
        self.input.get(start..self.pos).unwrap_or("")
    }

    fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// `or := and ( '|' and )*`
    fn parse_or(&mut self) -> Result<SkillExpr, SkillExprError> {
        let mut left = self.parse_and()?;
        loop {
            self.skip_whitespace();
            if self.peek() != Some('|') {
                return Ok(left);
            }
            self.bump('|');
            let right = self.parse_and()?;
            left = SkillExpr::Or(Box::new(left), Box::new(right));
        }
    }

    /// `and := unary ( ('&' | '&;') unary )*`
    fn parse_and(&mut self) -> Result<SkillExpr, SkillExprError> {
        let mut left = self.parse_unary()?;
        loop {
            self.skip_whitespace();
            if self.peek() != Some('&') {
                return Ok(left);
            }
            self.bump('&');
            if self.peek() == Some(';') {
                self.bump(';');
            }
            let right = self.parse_unary()?;
            left = SkillExpr::And(Box::new(left), Box::new(right));
        }
    }

    /// `unary := '!' unary | '(' expr ')' | compare`
    fn parse_unary(&mut self) -> Result<SkillExpr, SkillExprError> {
        self.skip_whitespace();
        let offset = self.pos;
        match self.peek() {
            None => Err(SkillExprError::UnexpectedEnd {
                offset,
                expected: EXPECTED_TERM,
                input: self.input.to_owned(),
            }),
            Some('!') => {
                self.bump('!');
                self.enter(offset)?;
                let inner = self.parse_unary()?;
                self.leave();
                Ok(SkillExpr::Not(Box::new(inner)))
            }
            Some('(') => {
                self.bump('(');
                self.enter(offset)?;
                let inner = self.parse_or()?;
                self.skip_whitespace();
                match self.peek() {
                    Some(')') => self.bump(')'),
                    None => {
                        return Err(SkillExprError::UnclosedParen {
                            offset,
                            input: self.input.to_owned(),
                        })
                    }
                    Some(found) => {
                        return Err(SkillExprError::UnexpectedChar {
                            found,
                            offset: self.pos,
                            expected: EXPECTED_AFTER_TERM,
                            input: self.input.to_owned(),
                        })
                    }
                }
                self.leave();
                Ok(inner)
            }
            Some(c) if is_skill_start(c) => self.parse_compare(),
            Some(found) => Err(SkillExprError::UnexpectedChar {
                found,
                offset,
                expected: EXPECTED_TERM,
                input: self.input.to_owned(),
            }),
        }
    }

    /// `compare := skill_name op integer`; the next character is a valid skill start.
    fn parse_compare(&mut self) -> Result<SkillExpr, SkillExprError> {
        let start = self.pos;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return Err(SkillExprError::TooManyComparisons {
                offset: start,
                input: self.input.to_owned(),
            });
        }
        let skill = self.take_while(is_skill_char);

        self.skip_whitespace();
        let op_offset = self.pos;
        let Some(op) = self.parse_operator() else {
            return Err(SkillExprError::MissingOperator {
                skill: skill.to_owned(),
                offset: op_offset,
                input: self.input.to_owned(),
            });
        };

        self.skip_whitespace();
        let level_offset = self.pos;
        // Read a generous run so `1.5` or `high` is reported whole, not as `1` + junk.
        let text = self.take_while(|c| is_skill_char(c) || c == '+');
        if text.is_empty() {
            return Err(SkillExprError::MissingLevel {
                skill: skill.to_owned(),
                op,
                offset: level_offset,
                input: self.input.to_owned(),
            });
        }
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SkillExprError::LevelNotInteger {
                text: text.to_owned(),
                offset: level_offset,
                input: self.input.to_owned(),
            });
        }
        let level = text
            .parse::<i64>()
            .map_err(|_| SkillExprError::LevelOutOfRange {
                text: text.to_owned(),
                offset: level_offset,
                input: self.input.to_owned(),
            })?;

        Ok(SkillExpr::Compare {
            skill: skill.to_owned(),
            op,
            level,
        })
    }

    /// Consumes and returns the operator at the current position, if there is one.
    fn parse_operator(&mut self) -> Option<CompareOp> {
        let rest = self.rest();
        let (spelling, op) = OPERATORS
            .iter()
            .find(|(spelling, _)| rest.starts_with(spelling))?;
        self.pos += spelling.len();
        Some(*op)
    }

    /// Records one more level of `(` or `!` nesting, failing past the limit.
    fn enter(&mut self, offset: usize) -> Result<(), SkillExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(SkillExprError::TooDeep {
                offset,
                input: self.input.to_owned(),
            });
        }
        Ok(())
    }

    /// Undoes one [`Parser::enter`].
    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}

/// Characters allowed in a skill name.
fn is_skill_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Characters allowed as the first character of a skill name.
fn is_skill_start(c: char) -> bool {
    is_skill_char(c) && !c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(skill: &str, op: CompareOp, level: i64) -> SkillExpr {
        SkillExpr::Compare {
            skill: skill.to_owned(),
            op,
            level,
        }
    }
    fn not(inner: SkillExpr) -> SkillExpr {
        SkillExpr::Not(Box::new(inner))
    }
    fn and(left: SkillExpr, right: SkillExpr) -> SkillExpr {
        SkillExpr::And(Box::new(left), Box::new(right))
    }
    fn or(left: SkillExpr, right: SkillExpr) -> SkillExpr {
        SkillExpr::Or(Box::new(left), Box::new(right))
    }
    fn a() -> SkillExpr {
        cmp("a", CompareOp::Eq, 1)
    }
    fn b() -> SkillExpr {
        cmp("b", CompareOp::Eq, 1)
    }
    fn c() -> SkillExpr {
        cmp("c", CompareOp::Eq, 1)
    }

    /// Inputs that must parse, with the tree each must give.
    fn success_table() -> Vec<(&'static str, SkillExpr)> {
        use CompareOp::*;
        vec![
            ("English=20", cmp("English", Eq, 20)),
            ("English!=20", cmp("English", Ne, 20)),
            ("English<20", cmp("English", Lt, 20)),
            ("English<=20", cmp("English", Le, 20)),
            ("English>20", cmp("English", Gt, 20)),
            ("English>=20", cmp("English", Ge, 20)),
            ("Level=-3", cmp("Level", Eq, -3)),
            ("Level>=0", cmp("Level", Ge, 0)),
            ("a=9223372036854775807", cmp("a", Eq, i64::MAX)),
            ("a=-9223372036854775808", cmp("a", Eq, i64::MIN)),
            ("Skill_1.x-y=1", cmp("Skill_1.x-y", Eq, 1)),
            ("_x=1", cmp("_x", Eq, 1)),
            ("a=1|b=1&c=1", or(a(), and(b(), c()))),
            ("a=1&b=1|c=1", or(and(a(), b()), c())),
            ("a=1&b=1&c=1", and(and(a(), b()), c())),
            ("a=1|b=1|c=1", or(or(a(), b()), c())),
            (
                "English=20&;Loans=2",
                and(cmp("English", Eq, 20), cmp("Loans", Eq, 2)),
            ),
            ("a=1&;b=1&c=1", and(and(a(), b()), c())),
            ("(a=1|b=1)&c=1", and(or(a(), b()), c())),
            ("a=1&(b=1&c=1)", and(a(), and(b(), c()))),
            ("a=1|(b=1|c=1)", or(a(), or(b(), c()))),
            ("((a=1))", a()),
            ("!a=1", not(a())),
            ("!!a=1", not(not(a()))),
            ("!a=1&b=1", and(not(a()), b())),
            ("!(a=1|b=1)", not(or(a(), b()))),
            ("!(a=1&b=1)|c=1", or(not(and(a(), b())), c())),
            (
                "!(Spanish>0) | French<3",
                or(not(cmp("Spanish", Gt, 0)), cmp("French", Lt, 3)),
            ),
            (
                "  English >= 5  &  Loans = 2 ",
                and(cmp("English", Ge, 5), cmp("Loans", Eq, 2)),
            ),
            ("\tEnglish\n=\r\n20\t", cmp("English", Eq, 20)),
            ("( a=1 ) &; ! b=1", and(a(), not(b()))),
        ]
    }

    #[test]
    fn valid_skill_expressions_parse_to_the_expected_tree() {
        for (input, expected) in success_table() {
            assert_eq!(SkillExpr::parse(input), Ok(expected), "parsing `{input}`");
        }
    }

    #[test]
    fn display_output_parses_back_to_the_same_tree() {
        for (input, expected) in success_table() {
            let printed = expected.to_string();
            assert_eq!(
                SkillExpr::parse(&printed),
                Ok(expected),
                "`{input}` printed as `{printed}` must parse back to the same tree"
            );
        }
    }

    #[test]
    fn display_prints_the_canonical_form() {
        let table = [
            ("English=20&;Loans=2", "English=20&Loans=2"),
            (" a >= -2 ", "a>=-2"),
            ("(a=1&b=1)&c=1", "a=1&b=1&c=1"),
            ("a=1&(b=1&c=1)", "a=1&(b=1&c=1)"),
            ("(a=1|b=1)&c=1", "(a=1|b=1)&c=1"),
            ("a=1|(b=1&c=1)", "a=1|b=1&c=1"),
            ("a=1|(b=1|c=1)", "a=1|(b=1|c=1)"),
            ("!(a=1)", "!a=1"),
            ("!(a=1&b=1)", "!(a=1&b=1)"),
            ("!(!(a=1))", "!!a=1"),
        ];
        for (input, canonical) in table {
            let parsed = SkillExpr::parse(input);
            assert_eq!(
                parsed.as_ref().map(ToString::to_string),
                Ok(canonical.to_owned()),
                "canonical form of `{input}`"
            );
        }
    }

    /// The variant name and offset of an error, so table rows stay short.
    fn kind(error: &SkillExprError) -> (&'static str, Option<usize>) {
        use SkillExprError::*;
        match error {
            Empty => ("Empty", None),
            UnexpectedChar { offset, .. } => ("UnexpectedChar", Some(*offset)),
            UnexpectedEnd { offset, .. } => ("UnexpectedEnd", Some(*offset)),
            MissingOperator { offset, .. } => ("MissingOperator", Some(*offset)),
            MissingLevel { offset, .. } => ("MissingLevel", Some(*offset)),
            LevelNotInteger { offset, .. } => ("LevelNotInteger", Some(*offset)),
            LevelOutOfRange { offset, .. } => ("LevelOutOfRange", Some(*offset)),
            UnclosedParen { offset, .. } => ("UnclosedParen", Some(*offset)),
            UnmatchedCloseParen { offset, .. } => ("UnmatchedCloseParen", Some(*offset)),
            TrailingInput { offset, .. } => ("TrailingInput", Some(*offset)),
            TooDeep { offset, .. } => ("TooDeep", Some(*offset)),
            TooManyComparisons { offset, .. } => ("TooManyComparisons", Some(*offset)),
        }
    }

    #[test]
    fn malformed_skill_expressions_report_the_error_kind_and_offset() {
        let too_deep_parens = format!("{}a=1{}", "(".repeat(33), ")".repeat(33));
        let too_deep_nots = format!("{}a=1", "!".repeat(33));
        let too_many = vec!["a=1"; MAX_COMPARISONS + 1].join("&");
        let too_many_offset = MAX_COMPARISONS * 4;
        let table: Vec<(&str, (&str, Option<usize>))> = vec![
            ("", ("Empty", None)),
            (" \t\n", ("Empty", None)),
            ("#English=1", ("UnexpectedChar", Some(0))),
            ("1abc=2", ("UnexpectedChar", Some(0))),
            ("a=1&&b=1", ("UnexpectedChar", Some(4))),
            ("a=1 & ; b=1", ("UnexpectedChar", Some(6))),
            ("a=1&()", ("UnexpectedChar", Some(5))),
            ("(a=1 b=2)", ("UnexpectedChar", Some(5))),
            ("é=1", ("UnexpectedChar", Some(0))),
            ("a=1 &", ("UnexpectedEnd", Some(5))),
            ("a=1|", ("UnexpectedEnd", Some(4))),
            ("!", ("UnexpectedEnd", Some(1))),
            ("English", ("MissingOperator", Some(7))),
            ("English 20", ("MissingOperator", Some(8))),
            ("Customer Service=1", ("MissingOperator", Some(9))),
            ("Español=1", ("MissingOperator", Some(4))),
            ("English!1", ("MissingOperator", Some(7))),
            ("English=", ("MissingLevel", Some(8))),
            ("English==1", ("MissingLevel", Some(8))),
            ("English>=&b=1", ("MissingLevel", Some(9))),
            ("English=abc", ("LevelNotInteger", Some(8))),
            ("English=1.5", ("LevelNotInteger", Some(8))),
            ("English=+5", ("LevelNotInteger", Some(8))),
            ("English=- 1", ("LevelNotInteger", Some(8))),
            ("English=99999999999999999999", ("LevelOutOfRange", Some(8))),
            ("a=-9223372036854775809", ("LevelOutOfRange", Some(2))),
            ("(a=1", ("UnclosedParen", Some(0))),
            ("a=1&((b=1)", ("UnclosedParen", Some(4))),
            ("a=1)", ("UnmatchedCloseParen", Some(3))),
            ("a=1 b=2", ("TrailingInput", Some(4))),
            ("a=1 !b=2", ("TrailingInput", Some(4))),
            (&too_deep_parens, ("TooDeep", Some(32))),
            (&too_deep_nots, ("TooDeep", Some(32))),
            (&too_many, ("TooManyComparisons", Some(too_many_offset))),
        ];
        for (input, expected) in table {
            let result = SkillExpr::parse(input);
            assert_eq!(
                result.as_ref().map_err(kind),
                Err(expected),
                "parsing `{input}` gave {result:?}"
            );
        }
    }

    #[test]
    fn expressions_at_the_limits_still_parse() {
        let deepest_parens = format!("{}a=1{}", "(".repeat(32), ")".repeat(32));
        let deepest_nots = format!("{}a=1", "!".repeat(32));
        let most_comparisons = vec!["a=1"; MAX_COMPARISONS].join("|");
        for input in [&deepest_parens, &deepest_nots, &most_comparisons] {
            assert!(SkillExpr::parse(input).is_ok(), "parsing `{input}`");
        }
    }

    #[test]
    fn error_messages_name_the_problem_position_and_fix() {
        let table = [
            ("", vec!["empty", "English>=5"]),
            ("a=1 & #", vec!["'#'", "byte 6", "`a=1 & #`", "expected"]),
            ("English 20", vec!["`English`", "byte 8", "`English>=5`"]),
            ("English>=", vec!["`English>=`", "byte 9", "`English>=5`"]),
            ("English=high", vec!["`high`", "not an integer", "`20`"]),
            (
                "English=99999999999999999999",
                vec!["out of range", "9223372036854775807"],
            ),
            ("(a=1", vec!["`(` at byte 0", "add a matching `)`"]),
            ("a=1)", vec!["`)` at byte 3", "remove it"]),
            (
                "a=1 b=2",
                vec!["`b=2`", "byte 4", "join comparisons with `&` or `|`"],
            ),
        ];
        for (input, fragments) in table {
            let message = SkillExpr::parse(input)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            for fragment in fragments {
                assert!(
                    message.contains(fragment),
                    "message for `{input}` should contain `{fragment}`, got: {message}"
                );
            }
        }
    }

    #[test]
    fn matches_evaluates_against_the_agent_levels_and_treats_missing_skills_as_false() {
        let agent: &[(&str, i64)] = &[("English", 20), ("Loans", 2), ("Spanish", 0)];
        let level_of = |skill: &str| {
            agent
                .iter()
                .find(|(name, _)| *name == skill)
                .map(|(_, level)| *level)
        };
        let table = [
            ("English=20", true),
            ("English=21", false),
            ("English!=20", false),
            ("English!=21", true),
            ("English<21", true),
            ("English<20", false),
            ("English<=20", true),
            ("English>19", true),
            ("English>20", false),
            ("English>=20", true),
            ("English>=21", false),
            ("Spanish=0", true),
            ("French=0", false),
            ("French!=5", false),
            ("French<100", false),
            ("!French=1", true),
            ("!English=20", false),
            ("English>=5&Loans=2", true),
            ("English>=5&French>0", false),
            ("French>0|Loans=2", true),
            ("French>0|German>0", false),
            ("!(Spanish>0)|French<3", true),
            ("!(English>0)|Loans>3", false),
            ("English=20&;Loans=2", true),
        ];
        for (input, expected) in table {
            let expr = SkillExpr::parse(input);
            assert_eq!(
                expr.as_ref().map(|e| e.matches(level_of)),
                Ok(expected),
                "`{input}` for an agent with {agent:?}"
            );
        }
    }

    #[test]
    fn every_short_input_over_the_grammar_alphabet_parses_or_errors_without_panicking() {
        // Exhaustive over all strings of up to 4 characters; every success must
        // also survive a display round trip.
        let alphabet = [
            'a', '1', '-', '=', '!', '<', '>', '&', ';', '|', '(', ')', ' ', 'é', '_', '.',
        ];
        let mut inputs = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for ch in alphabet {
                    let mut s = prefix.clone();
                    s.push(ch);
                    next.push(s);
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        for input in &inputs {
            if let Ok(expr) = SkillExpr::parse(input) {
                let printed = expr.to_string();
                assert_eq!(
                    SkillExpr::parse(&printed).as_ref(),
                    Ok(&expr),
                    "`{input}` printed as `{printed}`"
                );
            }
        }
    }
}
