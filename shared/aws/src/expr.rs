//! A small builder for DynamoDB expressions: placeholders are generated, never spliced from
//! data, and one set of changes can be rendered against the run item and against the run
//! copy nested in its lock item.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    /// `#attr` for an attribute name (our names are plain identifiers).
    pub fn name(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_owned());
        key
    }

    pub fn path(&mut self, segments: &[&str]) -> String {
        segments
            .iter()
            .map(|s| self.name(s))
            .collect::<Vec<_>>()
            .join(".")
    }

    pub fn value(&mut self, v: AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), v);
        key
    }

    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[derive(Debug, Clone)]
enum Change {
    Set(AttributeValue),
    SetIfAbsent(AttributeValue),
    Increment(i64),
    Append(AttributeValue),
    Remove,
}

/// The changes one run transition makes.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunChanges {
    /// (path, change, nested): nested paths go under the lock's run copy.
    changes: Vec<(Vec<&'static str>, Change, bool)>,
}

impl RunChanges {
    fn push(mut self, path: &[&'static str], change: Change, nested: bool) -> Self {
        self.changes.push((path.to_vec(), change, nested));
        self
    }

    pub fn set(self, path: &[&'static str], v: AttributeValue) -> Self {
        self.push(path, Change::Set(v), true)
    }

    pub fn set_if_absent(self, path: &[&'static str], v: AttributeValue) -> Self {
        self.push(path, Change::SetIfAbsent(v), true)
    }

    pub fn increment(self, path: &[&'static str], by: i64) -> Self {
        self.push(path, Change::Increment(by), true)
    }

    pub fn append(self, path: &[&'static str], list: AttributeValue) -> Self {
        self.push(path, Change::Append(list), true)
    }

    pub fn remove(self, path: &[&'static str]) -> Self {
        self.push(path, Change::Remove, true)
    }

    /// A top-level attribute of the item itself (e.g. the lock's TTL), never nested.
    pub fn set_top(self, attr: &'static str, v: AttributeValue) -> Self {
        self.push(&[attr], Change::Set(v), false)
    }

    /// Removes a top-level attribute of the item itself, never nested.
    pub fn remove_top(self, attr: &'static str) -> Self {
        self.push(&[attr], Change::Remove, false)
    }

    /// Renders an update expression; with `under = Some("run")` nested paths go there.
    pub fn render(&self, under: Option<&str>, p: &mut Placeholders) -> String {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for (segs, change, nested) in &self.changes {
            let mut all: Vec<&str> = if *nested {
                under.into_iter().collect()
            } else {
                Vec::new()
            };
            all.extend(segs.iter().copied());
            let at = p.path(&all);
            match change {
                Change::Set(v) => {
                    let v = p.value(v.clone());
                    sets.push(format!("{at} = {v}"));
                }
                Change::SetIfAbsent(v) => {
                    let v = p.value(v.clone());
                    sets.push(format!("{at} = if_not_exists({at}, {v})"));
                }
                Change::Increment(by) => {
                    let v = p.value(AttributeValue::N(by.to_string()));
                    sets.push(format!("{at} = {at} + {v}"));
                }
                Change::Append(list) => {
                    let v = p.value(list.clone());
                    sets.push(format!("{at} = list_append({at}, {v})"));
                }
                Change::Remove => removes.push(at),
            }
        }
        let mut expr = String::new();
        if !sets.is_empty() {
            expr.push_str("SET ");
            expr.push_str(&sets.join(", "));
        }
        if !removes.is_empty() {
            if !expr.is_empty() {
                expr.push(' ');
            }
            expr.push_str("REMOVE ");
            expr.push_str(&removes.join(", "));
        }
        expr
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_changes_render_against_the_run_and_its_lock_copy() {
        let c = RunChanges::default()
            .set(&["status"], AttributeValue::S("running".into()))
            .increment(&["counters", "processed"], 3)
            .remove(&["lease_expires_at"]);
        let mut p = Placeholders::default();
        assert_eq!(
            c.render(None, &mut p),
            "SET #status = :v0, #counters.#processed = #counters.#processed + :v1 REMOVE #lease_expires_at"
        );
        let c = c.set_top("expires_at", AttributeValue::N("1".into()));
        let mut p = Placeholders::default();
        assert_eq!(
            c.render(Some("run"), &mut p),
            "SET #run.#status = :v0, #run.#counters.#processed = #run.#counters.#processed + :v1, #expires_at = :v2 REMOVE #run.#lease_expires_at"
        );
    }
}
