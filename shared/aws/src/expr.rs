//! The one builder of DynamoDB expressions: placeholders are generated, never spliced from
//! data. Conditions are short strings over placeholders ([`Placeholders::exists`],
//! [`Placeholders::eq`], ...); every update expression is a [`Changes`], which can also be
//! rendered against the run copy nested in a lock item.

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

    /// `attribute_exists(#attr)`.
    pub fn exists(&mut self, attr: &str) -> String {
        format!("attribute_exists({})", self.name(attr))
    }

    /// `attribute_not_exists(#attr)`.
    pub fn absent(&mut self, attr: &str) -> String {
        format!("attribute_not_exists({})", self.name(attr))
    }

    /// `#attr = :v`.
    pub fn eq(&mut self, attr: &str, v: AttributeValue) -> String {
        format!("{} = {}", self.name(attr), self.value(v))
    }

    /// `#attr IN (:v, ...)`.
    pub fn one_of(
        &mut self,
        attr: &str,
        values: impl IntoIterator<Item = AttributeValue>,
    ) -> String {
        let values: Vec<String> = values.into_iter().map(|v| self.value(v)).collect();
        format!("{} IN ({})", self.name(attr), values.join(", "))
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
    /// `ADD`: a number added (the attribute is created when absent) or set members added.
    Add(AttributeValue),
    /// `DELETE`: set members removed.
    Delete(AttributeValue),
    Remove,
}

/// The changes one update makes to an item.
#[derive(Debug, Default, Clone)]
pub(crate) struct Changes {
    /// (path, change, nested): nested paths go under `under` when rendered against a copy.
    changes: Vec<(Vec<&'static str>, Change, bool)>,
}

impl Changes {
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

    /// `SET a = a + n`: the attribute must exist.
    pub fn increment(self, path: &[&'static str], by: i64) -> Self {
        self.push(path, Change::Increment(by), true)
    }

    pub fn append(self, path: &[&'static str], list: AttributeValue) -> Self {
        self.push(path, Change::Append(list), true)
    }

    /// `ADD a n` (a number, created when absent) or `ADD a {members}` (a set).
    pub fn add(self, path: &[&'static str], v: AttributeValue) -> Self {
        self.push(path, Change::Add(v), true)
    }

    /// `DELETE a {members}`: removes members from a set.
    pub fn delete(self, path: &[&'static str], members: AttributeValue) -> Self {
        self.push(path, Change::Delete(members), true)
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

    /// Renders the update expression of the item itself.
    pub fn render(&self, p: &mut Placeholders) -> String {
        self.render_under(None, p)
    }

    /// Renders an update expression; with `under = Some("run")` nested paths go there.
    pub fn render_under(&self, under: Option<&str>, p: &mut Placeholders) -> String {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut adds = Vec::new();
        let mut deletes = Vec::new();
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
                Change::Add(v) => {
                    let v = p.value(v.clone());
                    adds.push(format!("{at} {v}"));
                }
                Change::Delete(v) => {
                    let v = p.value(v.clone());
                    deletes.push(format!("{at} {v}"));
                }
                Change::Remove => removes.push(at),
            }
        }
        [
            ("SET", sets),
            ("REMOVE", removes),
            ("ADD", adds),
            ("DELETE", deletes),
        ]
        .into_iter()
        .filter(|(_, clauses)| !clauses.is_empty())
        .map(|(action, clauses)| format!("{action} {}", clauses.join(", ")))
        .collect::<Vec<_>>()
        .join(" ")
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
        let c = Changes::default()
            .set(&["status"], AttributeValue::S("running".into()))
            .increment(&["counters", "processed"], 3)
            .remove(&["lease_expires_at"]);
        let mut p = Placeholders::default();
        assert_eq!(
            c.render(&mut p),
            "SET #status = :v0, #counters.#processed = #counters.#processed + :v1 REMOVE #lease_expires_at"
        );
        let c = c.set_top("expires_at", AttributeValue::N("1".into()));
        let mut p = Placeholders::default();
        assert_eq!(
            c.render_under(Some("run"), &mut p),
            "SET #run.#status = :v0, #run.#counters.#processed = #run.#counters.#processed + :v1, #expires_at = :v2 REMOVE #run.#lease_expires_at"
        );
    }

    #[test]
    fn set_members_are_added_and_deleted_in_their_own_clauses() {
        let c = Changes::default()
            .add(&["sets"], AttributeValue::Ss(vec!["a".into()]))
            .remove(&["deleting"]);
        let mut p = Placeholders::default();
        assert_eq!(c.render(&mut p), "REMOVE #deleting ADD #sets :v0");
        let c = Changes::default().delete(&["sets"], AttributeValue::Ss(vec!["a".into()]));
        let mut p = Placeholders::default();
        assert_eq!(c.render(&mut p), "DELETE #sets :v0");
    }

    #[test]
    fn conditions_name_and_value_through_placeholders_only() {
        let mut p = Placeholders::default();
        let cond = format!(
            "{} AND {} AND {}",
            p.exists("PK"),
            p.eq("status", AttributeValue::S("active".into())),
            p.one_of("role", [AttributeValue::S("owner".into())])
        );
        assert_eq!(
            cond,
            "attribute_exists(#PK) AND #status = :v0 AND #role IN (:v1)"
        );
        assert_eq!(p.values().map(|v| v.len()), Some(2));
    }
}
