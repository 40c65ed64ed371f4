//! Filling the pages' `{{name}}` placeholders, escaping every value.
//!
//! One pass over the template: a value that happens to contain `{{…}}` is
//! written out (escaped) and never expanded, and no value is ever inserted
//! unescaped.

use super::super::auth::html_escape;

/// Replace each `{{name}}` in `template` with the escaped value of `name` in
/// `values`. An unknown name renders as nothing (the tests check that every
/// placeholder of every page is supplied).
pub(super) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if let Some((_, value)) = values.iter().find(|(k, _)| *k == name) {
            out.push_str(&html_escape(value));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The placeholder names used in `template`, in order.
#[cfg(test)]
pub(super) fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_never_expanded_twice() {
        let page = fill(
            r#"<p title="{{a}}">{{ b }}</p>{{missing}}"#,
            &[
                ("a", r#"x" onmouseover="y"#),
                ("b", "<script>{{a}}</script>"),
            ],
        );
        assert_eq!(
            page,
            r#"<p title="x&quot; onmouseover=&quot;y">&lt;script&gt;{{a}}&lt;/script&gt;</p>"#
        );
    }

    #[test]
    fn an_unclosed_placeholder_is_left_as_text() {
        assert_eq!(fill("a {{b", &[("b", "x")]), "a {{b");
        assert_eq!(placeholders("{{a}} {{ b }} {{c"), ["a", "b"]);
    }
}
