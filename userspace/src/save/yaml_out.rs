//! Writing YAML by hand: the file is small and regular, and hand-written output keeps
//! the look of the examples (flow mappings for ends and routes).

#[derive(Default)]
pub struct Out {
    text: String,
}

impl Out {
    pub fn line(&mut self, indent: usize, s: &str) {
        self.text.push_str(&" ".repeat(indent));
        self.text.push_str(s);
        self.text.push('\n');
    }

    pub fn append(&mut self, other: Out) {
        self.text.push_str(&other.text);
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A YAML scalar for `s`: plain when it is a simple word that YAML reads back as the
/// same string (or number, for sysctl values), double-quoted with escapes otherwise.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !s.starts_with(['-', '.'])
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
        );
    if plain {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_what_yaml_would_misread() {
        assert_eq!(quote("ns1"), "ns1");
        assert_eq!(quote("10.1.1.2/24"), "10.1.1.2/24");
        assert_eq!(quote("02:00:00:00:00:01"), "\"02:00:00:00:00:01\"");
        assert_eq!(quote("yes"), "\"yes\"");
        assert_eq!(quote("echo \"hi\"; x"), "\"echo \\\"hi\\\"; x\"");
        assert_eq!(quote(""), "\"\"");
    }
}
