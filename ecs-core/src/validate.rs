//! Validation problems: every problem of a specification is collected and reported at once,
//! each naming the field it is about, before any AWS call is made.

use std::fmt;

/// One problem found while validating a specification.
///
/// `field` is the dotted path of the offending field as a user would write it in a manifest,
/// for example `network.vpc.cidr` or `tags["aws:owner"]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Dotted path of the field, e.g. `vpc.public_subnets[1]`.
    pub field: String,
    /// What is wrong with it, in one sentence.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for Problem {}

/// Every problem found in a specification; never empty when returned as an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }

    /// Records every problem of `other`.
    pub fn extend(&mut self, other: impl IntoIterator<Item = Problem>) {
        self.0.extend(other);
    }

    /// Records the problem of a failed check, if any.
    pub fn check(&mut self, result: Result<(), Problem>) {
        if let Err(problem) = result {
            self.0.push(problem);
        }
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Whether some problem names exactly this field.
    pub fn mentions(&self, field: &str) -> bool {
        self.0.iter().any(|p| p.field == field)
    }

    /// `Ok(())` when empty, otherwise `Err(self)`.
    pub fn into_result(self) -> Result<(), Problems> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_every_problem_with_its_field() {
        let mut p = Problems::new();
        p.push("vpc.cidr", "must be between /16 and /28");
        p.push("tags[\"aws:x\"]", "must not start with aws:");
        let text = p.to_string();
        assert!(text.starts_with("2 problems"));
        assert!(text.contains("vpc.cidr: must be between /16 and /28"));
        assert!(text.contains("tags[\"aws:x\"]: must not start with aws:"));
        assert!(p.mentions("vpc.cidr"));
        assert!(p.into_result().is_err());
        assert!(Problems::new().into_result().is_ok());
    }
}
