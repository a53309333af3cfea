//! RFC 6901 JSON pointers with a `*` wildcard for "every array item or map value".

use serde_json::Value;

use crate::engine::manifest::escape_pointer_token;

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
}
