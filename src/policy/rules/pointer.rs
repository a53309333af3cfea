//! RFC 6901 JSON pointers with a `*` wildcard for "every array item or map value".

use serde_json::Value;

use crate::policy::manifest::escape_pointer_token;

/// Every `(pointer, node)` matched by `pattern`; missing branches match nothing.
pub fn select<'v>(root: &'v Value, pattern: &str) -> Vec<(String, &'v Value)> {
    let mut current = vec![(String::new(), root)];
    for token in tokens(pattern) {
        let mut next = Vec::new();
        for (pointer, node) in current {
            if token == "*" {
                match node {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            next.push((format!("{pointer}/{i}"), item));
                        }
                    }
                    Value::Object(map) => {
                        for (k, v) in map {
                            next.push((format!("{pointer}/{}", escape_pointer_token(k)), v));
                        }
                    }
                    _ => {}
                }
            } else {
                let child = match node {
                    Value::Object(map) => map.get(&token),
                    Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                    _ => None,
                };
                if let Some(child) = child {
                    next.push((format!("{pointer}/{}", escape_pointer_token(&token)), child));
                }
            }
        }
        current = next;
    }
    current
}

/// The unescaped reference tokens of a pointer (`""` has none).
pub fn tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
}

/// One step of an [`identity_path`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdentityStep {
    Key(String),
    /// A list item without a string `name`, by position.
    Index(usize),
    /// A list item by its `name`.
    Named(String),
}

/// `pointer` into `root` with every list item that has a string `name` named by it instead
/// of its position: the same item keeps its identity when its list is reordered, so two
/// versions of an object can be compared finding by finding (the admission ratchet).
pub fn identity_path(root: &Value, pointer: &str) -> Vec<IdentityStep> {
    let mut node = Some(root);
    tokens(pointer)
        .map(|token| match (node, token.parse::<usize>()) {
            (Some(Value::Array(items)), Ok(index)) => {
                let item = items.get(index);
                node = item;
                match item.and_then(|i| i.get("name")).and_then(Value::as_str) {
                    Some(name) => IdentityStep::Named(name.to_owned()),
                    None => IdentityStep::Index(index),
                }
            }
            (Some(Value::Object(map)), _) => {
                node = map.get(&token);
                IdentityStep::Key(token)
            }
            _ => {
                node = None;
                IdentityStep::Key(token)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_with_wildcards() {
        let v = json!({"spec": {"p": [{"a": 1}, {"b": 2}], "m": {"x/y": 3}}});
        let got: Vec<String> = select(&v, "/spec/p/*")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["/spec/p/0", "/spec/p/1"]);
        let got: Vec<String> = select(&v, "/spec/m/*")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["/spec/m/x~1y"]);
        assert!(select(&v, "/spec/missing/*").is_empty());
        assert_eq!(select(&v, "").len(), 1);
        assert_eq!(select(&v, "/spec/p/1/b")[0].1, &json!(2));
    }

    #[test]
    fn identity_paths_name_list_items() {
        let before = json!({"spec": {"profiles": [{"name": "a"}, {"name": "b"}], "args": ["x"]}});
        let after = json!({"spec": {"profiles": [{"name": "b"}, {"name": "a"}], "args": ["x"]}});
        assert_eq!(
            identity_path(&before, "/spec/profiles/1/retentionPolicy"),
            identity_path(&after, "/spec/profiles/0/retentionPolicy")
        );
        assert_ne!(
            identity_path(&before, "/spec/profiles/0/retentionPolicy"),
            identity_path(&after, "/spec/profiles/0/retentionPolicy")
        );
        assert_eq!(
            identity_path(&after, "/spec/args/0"),
            [
                IdentityStep::Key("spec".into()),
                IdentityStep::Key("args".into()),
                IdentityStep::Index(0)
            ]
        );
        // A pointer to where a missing field belongs keeps its remaining steps as keys.
        assert_eq!(identity_path(&after, "/spec/tls/issuerRef").len(), 3);
    }
}
