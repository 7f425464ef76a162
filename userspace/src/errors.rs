//! Helpers shared by the module error types: printing an error with its causes, and a
//! list of independent failures (a teardown) that reports each one once.
//!
//! Error messages never repeat their `#[source]`: the cause is printed by whoever
//! prints the chain (`main` with `{:#}`, library code through [`Chain`]).

use std::{error::Error, fmt};

/// An error and its causes on one line: `what: because: because`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

type Boxed = Box<dyn Error + Send + Sync + 'static>;

/// Independent failures of one operation, in order. Pushing another list flattens it,
/// so a teardown that runs another teardown lists every failure once, not a list in a
/// list.
#[derive(Debug, Default)]
pub struct ErrorList(Vec<Boxed>);

impl ErrorList {
    pub fn new() -> Self {
        Self::default()
    }

    /// A list of one failure.
    pub fn one(e: impl Into<Boxed>) -> Self {
        let mut list = Self::new();
        list.push(e);
        list
    }

    pub fn push(&mut self, e: impl Into<Boxed>) {
        let e: Boxed = e.into();
        match e.downcast::<ErrorList>() {
            Ok(list) => self.0.extend(list.0),
            Err(e) => self.0.push(e),
        }
    }

    /// Takes over every failure of `other`.
    pub fn extend(&mut self, other: ErrorList) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(dyn Error + Send + Sync + 'static)> {
        self.0.iter().map(|e| &**e)
    }
}

/// One failure per line, each with its causes.
impl fmt::Display for ErrorList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            write!(f, "\n  - {}", Chain(&**e))?;
        }
        Ok(())
    }
}

impl Error for ErrorList {}

impl<E: Into<Boxed>> FromIterator<E> for ErrorList {
    fn from_iter<I: IntoIterator<Item = E>>(iter: I) -> Self {
        let mut list = Self::new();
        for e in iter {
            list.push(e);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot remove {0}")]
    struct Remove(&'static str, #[source] std::io::Error);

    #[test]
    fn nested_lists_flatten_and_each_error_prints_once_with_its_cause() {
        let mut inner = ErrorList::new();
        inner.push(Remove("a", std::io::Error::other("busy")));
        inner.push(Remove("b", std::io::Error::other("gone")));
        let mut outer = ErrorList::new();
        outer.push(Remove("c", std::io::Error::other("denied")));
        outer.push(inner);
        assert_eq!(outer.len(), 3);
        assert_eq!(
            outer.to_string(),
            "\n  - cannot remove c: denied\n  - cannot remove a: busy\n  - cannot remove b: gone"
        );
    }
}
