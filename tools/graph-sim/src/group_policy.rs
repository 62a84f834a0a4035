//! Administrative templates as Graph holds them: a catalog of group policy definitions (each
//! with its presentations, the options a setting shows), and each template's definition values
//! bound to a definition, with presentation values bound to presentations of it. Reads expand
//! the bindings inline; writes must bind, as Graph requires.
//!
//! - A definition value's relationships are `definition` and `presentationValues`; a
//!   presentation value's are `presentation` and `definitionValue`
//!   (<https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicydefinitionvalue?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicypresentationvalue?view=graph-rest-beta>).
//!   The list `definitionValues?$expand=definition,presentationValues($expand=presentation)`
//!   answers both inline
//!   (<https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinitionvalue-list?view=graph-rest-beta>);
//!   any other name is refused with OData's 400, as `expand.rs` refuses on lists.
//! - A write names the definition and presentations by OData binds (`definition@odata.bind`,
//!   `presentation@odata.bind`, absolute URLs of `groupPolicyDefinitions('{id}')` and
//!   `.../presentations('{id}')`), for a create
//!   (<https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinitionvalue-create?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicypresentationvaluetext-create?view=graph-rest-beta>)
//!   and for `updateDefinitionValues`' `added` and `updated`
//!   (<https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-updatedefinitionvalues?view=graph-rest-beta>).
//!   The reference's examples leave the binds out; the binding is OData's
//!   (<https://docs.oasis-open.org/odata/odata-json-format/v4.01/odata-json-format-v4.01.html#sec_BindOperation>)
//!   and what working tooling sends (IntuneCD's group policy update,
//!   <https://github.com/almenscorner/IntuneCD>; Microsoft365DSC's
//!   `IntuneDeviceConfigurationAdministrativeTemplatePolicyWindows10`). A value without its
//!   definition is meaningless to Intune, and an expanded object in a write body is not a
//!   bind: both answer 400 here, as does a bind to a definition or presentation that does
//!   not exist.
//! - graph-sim stores a binding as the `@odata.bind` the write sent; reads never answer it
//!   (`sim.rs`'s `select_fields`), only its expansion.
//!
//! The catalog is the same in every tenant (Microsoft's built-in ADMX definitions carry the
//! same ids everywhere), at `deviceManagement/groupPolicyDefinitions` when the tenant was
//! generated with administrative templates, and built in otherwise.

use serde_json::{Map, Value, json};

use crate::config::{Collection, SimTenant};
use crate::rng::Rng;

pub(crate) const TEMPLATES: &str = "deviceManagement/groupPolicyConfigurations";
pub(crate) const DEFINITIONS: &str = "deviceManagement/groupPolicyDefinitions";
const DEFINITION_BIND: &str = "definition@odata.bind";
const PRESENTATION_BIND: &str = "presentation@odata.bind";
const VALUES: &str = "definitionValues";
const PRESENTATION_VALUES: &str = "presentationValues";

/// (display name, category path, class type, presentations: (kind, label)).
type Definition = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(Kind, &'static str)],
);

/// The presentation kinds the catalog uses, with the value type that fills each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A text box.
    Text,
    /// A decimal text box.
    Decimal,
    /// A check box.
    Check,
    /// A multi-text box.
    MultiText,
}

impl Kind {
    fn presentation_type(self) -> &'static str {
        match self {
            Kind::Text => "#microsoft.graph.groupPolicyPresentationTextBox",
            Kind::Decimal => "#microsoft.graph.groupPolicyPresentationDecimalTextBox",
            Kind::Check => "#microsoft.graph.groupPolicyPresentationCheckBox",
            Kind::MultiText => "#microsoft.graph.groupPolicyPresentationMultiTextBox",
        }
    }

    fn of(presentation_type: &str) -> Option<Kind> {
        [Kind::Text, Kind::Decimal, Kind::Check, Kind::MultiText]
            .into_iter()
            .find(|k| k.presentation_type() == presentation_type)
    }

    /// A presentation value of this kind: its type and its value field.
    fn value(self, rng: &mut Rng) -> Value {
        match self {
            Kind::Text => json!({
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueText",
                "value": format!("https://intranet.contoso.com/{}", rng.below(1000)),
            }),
            Kind::Decimal => json!({
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueDecimal",
                "value": 1 + rng.below(120),
            }),
            Kind::Check => json!({
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueBoolean",
                "value": rng.chance(0.5),
            }),
            Kind::MultiText => json!({
                "@odata.type": "#microsoft.graph.groupPolicyPresentationValueMultiText",
                "values": [format!("contoso{}.com", rng.below(100)), "fabrikam.com"],
            }),
        }
    }
}

const CATALOG: &[Definition] = &[
    (
        "Configure the home page URL",
        "\\Microsoft Edge\\Startup, home page and new tab page",
        "machine",
        &[(Kind::Text, "Home page URL")],
    ),
    (
        "Silently move Windows known folders to OneDrive",
        "\\OneDrive",
        "machine",
        &[
            (Kind::Text, "Tenant ID:"),
            (
                Kind::Check,
                "Show notification to users after folders have been redirected:",
            ),
        ],
    ),
    (
        "Limit the sync app upload rate to a percentage of throughput",
        "\\OneDrive",
        "machine",
        &[(Kind::Decimal, "Bandwidth:")],
    ),
    (
        "Configure the list of enterprise sites",
        "\\Microsoft Edge\\Enterprise mode",
        "machine",
        &[(Kind::MultiText, "Sites")],
    ),
    (
        "Screen saver timeout",
        "\\Control Panel\\Personalization",
        "user",
        &[(
            Kind::Decimal,
            "Number of seconds to wait to enable the screen saver",
        )],
    ),
    (
        "Set the default download directory",
        "\\Microsoft Edge\\Downloads",
        "user",
        &[
            (Kind::Text, "Set download directory"),
            (
                Kind::Check,
                "Ask where to save each file before downloading",
            ),
        ],
    ),
    (
        "Turn off Windows Defender SmartScreen",
        "\\Windows Components\\File Explorer",
        "machine",
        &[],
    ),
    (
        "Specify intranet Microsoft update service location",
        "\\Windows Components\\Windows Update",
        "machine",
        &[
            (
                Kind::Text,
                "Set the intranet update service for detecting updates:",
            ),
            (Kind::Text, "Set the intranet statistics server:"),
        ],
    ),
];

/// The catalog's generated form (deterministic, the same for every seed and tenant):
/// definitions as Graph answers them, with `"{id}/presentations"`.
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinition-get?view=graph-rest-beta
/// https://learn.microsoft.com/graph/api/resources/intune-grouppolicy-grouppolicypresentation?view=graph-rest-beta
pub(crate) fn builtin_catalog() -> Collection {
    let mut rng = Rng::derive(0, DEFINITIONS);
    let mut catalog = Collection {
        beta_only: true,
        ..Collection::default()
    };
    let stamp = "2023-03-14T18:22:05.2630000Z";
    for (name, category, class, presentations) in CATALOG {
        let id = rng.guid();
        let items: Vec<Value> = presentations
            .iter()
            .map(|(kind, label)| {
                let mut p = json!({
                    "@odata.type": kind.presentation_type(),
                    "id": rng.guid(),
                    "label": label,
                    "lastModifiedDateTime": stamp,
                });
                if let (Some(map), Kind::Text | Kind::MultiText) = (p.as_object_mut(), kind) {
                    map.insert("required".into(), json!(false));
                    map.insert("maxLength".into(), json!(1023));
                }
                p
            })
            .collect();
        catalog
            .sub_resources
            .insert(format!("{id}/presentations"), items);
        catalog.objects.push(json!({
            "@odata.type": "#microsoft.graph.groupPolicyDefinition",
            "id": id,
            "classType": class,
            "displayName": name,
            "explainText": format!("This policy setting configures: {name}."),
            "categoryPath": category,
            "supportedOn": "At least Windows 10",
            "policyType": "admxBacked",
            "hasRelatedDefinitions": false,
            "groupPolicyCategoryId": rng.guid(),
            "minDeviceCspVersion": "10.0",
            "minUserCspVersion": "10.0",
            "version": "1.0",
            "lastModifiedDateTime": stamp,
        }));
    }
    catalog
}

/// The tenant's catalog: its own collection, or the built-in one.
pub(crate) fn catalog_of(tenant: &SimTenant) -> Collection {
    tenant
        .collections
        .get(DEFINITIONS)
        .cloned()
        .unwrap_or_else(builtin_catalog)
}

fn definition_url(id: &str) -> String {
    format!("https://graph.microsoft.com/beta/{DEFINITIONS}('{id}')")
}

/// The id inside the last `name('{id}')` segment of a bind URL, and what precedes it.
fn last_key<'u>(url: &'u str, name: &str) -> Option<(&'u str, &'u str)> {
    let url = url.strip_suffix("')")?;
    let open = format!("{name}('");
    let at = url.rfind(&open)?;
    Some((&url[..at], &url[at + open.len()..]))
}

/// The definition a `definition@odata.bind` URL names.
fn bound_definition(url: &str) -> Option<&str> {
    let (before, id) = last_key(url, "groupPolicyDefinitions")?;
    before.ends_with("deviceManagement/").then_some(id)
}

/// The (definition, presentation) a `presentation@odata.bind` URL names.
fn bound_presentation(url: &str) -> Option<(&str, &str)> {
    let (before, presentation) = last_key(url, "presentations")?;
    let definition = bound_definition(before.strip_suffix('/')?)?;
    Some((definition, presentation))
}

fn find<'c>(items: &'c [Value], id: &str) -> Option<&'c Value> {
    items
        .iter()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
}

fn presentations<'c>(catalog: &'c Collection, definition: &str) -> &'c [Value] {
    catalog
        .sub_resources
        .get(&format!("{definition}/presentations"))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Generated definition values of template `id`: distinct definitions of the catalog, each
/// value bound to one, with one presentation value bound to each of its presentations.
pub(crate) fn generate_values(
    collection: &mut Collection,
    id: &str,
    created: &str,
    modified: &str,
    rng: &mut Rng,
) {
    let catalog = builtin_catalog();
    let mut definitions: Vec<&Value> = catalog.objects.iter().collect();
    let count = 1 + rng.below(definitions.len().min(6) as u64) as usize;
    let mut values = Vec::new();
    for _ in 0..count {
        let definition = definitions.remove(rng.below(definitions.len() as u64) as usize);
        let definition_id = definition["id"].as_str().unwrap_or_default();
        let value_id = rng.guid();
        let presentation_values: Vec<Value> = presentations(&catalog, definition_id)
            .iter()
            .filter_map(|p| {
                let kind = Kind::of(p["@odata.type"].as_str()?)?;
                let presentation = p["id"].as_str()?;
                let mut value = kind.value(rng);
                let map = value.as_object_mut()?;
                map.insert("id".into(), json!(rng.guid()));
                map.insert("createdDateTime".into(), json!(created));
                map.insert("lastModifiedDateTime".into(), json!(modified));
                map.insert(
                    PRESENTATION_BIND.into(),
                    json!(format!(
                        "{}/presentations('{presentation}')",
                        definition_url(definition_id)
                    )),
                );
                Some(value)
            })
            .collect();
        collection.sub_resources.insert(
            format!("{id}/{VALUES}/{value_id}/{PRESENTATION_VALUES}"),
            presentation_values,
        );
        values.push(json!({
            "id": value_id,
            "enabled": rng.chance(0.8),
            "configurationType": "policy",
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            DEFINITION_BIND: definition_url(definition_id),
        }));
    }
    collection
        .sub_resources
        .insert(format!("{id}/{VALUES}"), values);
}

// ----- reads ---------------------------------------------------------------------------------

/// Which list below a template a path is, for the expansions it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Nested {
    /// `{template}/definitionValues`.
    Values,
    /// `{template}/definitionValues/{value}/presentationValues`.
    PresentationValues,
}

impl Nested {
    /// The nested list at `full` (collection key and the path below it), if it is one.
    pub(crate) fn of(collection_key: &str, full: &str) -> Option<Nested> {
        if collection_key != TEMPLATES {
            return None;
        }
        let rest = full.strip_prefix(collection_key)?.trim_start_matches('/');
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [_, VALUES] => Some(Nested::Values),
            [_, VALUES, _, PRESENTATION_VALUES] => Some(Nested::PresentationValues),
            _ => None,
        }
    }

    fn entity(&self) -> &'static str {
        match self {
            Nested::Values => "groupPolicyDefinitionValue",
            Nested::PresentationValues => "groupPolicyPresentationValue",
        }
    }

    fn navigations(&self) -> &'static [&'static str] {
        match self {
            Nested::Values => &["definition", PRESENTATION_VALUES],
            Nested::PresentationValues => &["presentation", "definitionValue"],
        }
    }

    /// Parses `$expand` as Graph does before reading: a name the entity lacks (at any
    /// depth) is Graph's 400 message.
    pub(crate) fn check(
        &self,
        expand: Option<&str>,
    ) -> Result<Vec<(String, Option<String>)>, String> {
        let items = split_expand(expand.unwrap_or_default());
        for (name, nested) in &items {
            if !self.navigations().contains(&name.as_str()) {
                return Err(format!(
                    "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type 'microsoft.graph.{}'.",
                    self.entity()
                ));
            }
            if let Some(inner) = nested {
                match (self, name.as_str()) {
                    (Nested::Values, PRESENTATION_VALUES) => {
                        Nested::PresentationValues.check(Some(inner))?;
                    }
                    _ if split_expand(inner).is_empty() => {}
                    _ => {
                        return Err(format!(
                            "Parsing OData Select and Expand failed: graph-sim expands nothing below '{name}'."
                        ));
                    }
                }
            }
        }
        Ok(items)
    }

    /// One listed item with its expansions, inline as Graph answers them: `catalog` holds the
    /// definitions and presentations, `template` the templates and their values, `path` is the
    /// list's path below the templates' collection.
    pub(crate) fn shape(
        &self,
        catalog: &Collection,
        template: &Collection,
        path: &str,
        item: &Value,
        expand: &[(String, Option<String>)],
    ) -> Value {
        let mut shaped = item.clone();
        let Some(map) = shaped.as_object_mut() else {
            return shaped;
        };
        for (name, nested) in expand {
            let expanded = match (self, name.as_str()) {
                (Nested::Values, "definition") => item
                    .get(DEFINITION_BIND)
                    .and_then(Value::as_str)
                    .and_then(bound_definition)
                    .and_then(|d| find(&catalog.objects, d))
                    .cloned()
                    .unwrap_or(Value::Null),
                (Nested::Values, _) => {
                    let vid = item.get("id").and_then(Value::as_str).unwrap_or_default();
                    let below = format!("{path}/{vid}/{PRESENTATION_VALUES}");
                    let inner = nested.as_deref().map(split_expand).unwrap_or_default();
                    let values = template
                        .sub_resources
                        .get(&below)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    Value::Array(
                        values
                            .iter()
                            .map(|v| {
                                let shaped = Nested::PresentationValues
                                    .shape(catalog, template, &below, v, &inner);
                                hide_binds(&shaped)
                            })
                            .collect(),
                    )
                }
                (Nested::PresentationValues, "presentation") => item
                    .get(PRESENTATION_BIND)
                    .and_then(Value::as_str)
                    .and_then(bound_presentation)
                    .and_then(|(d, p)| find(presentations(catalog, d), p))
                    .cloned()
                    .unwrap_or(Value::Null),
                (Nested::PresentationValues, _) => {
                    // `{template}/definitionValues/{value}/presentationValues`: the parent.
                    let mut parts = path.rsplitn(3, '/');
                    let (_, value, values) = (parts.next(), parts.next(), parts.next());
                    values
                        .zip(value)
                        .and_then(|(values, value)| {
                            template
                                .sub_resources
                                .get(values)
                                .and_then(|items| find(items, value))
                        })
                        .map(hide_binds)
                        .unwrap_or(Value::Null)
                }
            };
            map.insert(name.clone(), expanded);
        }
        hide_binds(&shaped)
    }
}

/// `a,b($expand=c)` as `[(a, None), (b, Some("c"))]`; other nested options are ignored.
fn split_expand(raw: &str) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let (mut depth, mut current) = (0usize, String::new());
    for c in raw.chars().chain(std::iter::once(',')) {
        match c {
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            _ => current.push(c),
        }
    }
    items
        .into_iter()
        .filter_map(|item| {
            let item = item.trim();
            if item.is_empty() {
                return None;
            }
            let Some((name, options)) = item.split_once('(') else {
                return Some((item.to_owned(), None));
            };
            let options = options.strip_suffix(')').unwrap_or(options);
            let nested = options.split(';').find_map(|o| {
                let (k, v) = o.split_once('=')?;
                (k.trim()
                    .trim_start_matches('$')
                    .eq_ignore_ascii_case("expand"))
                .then(|| v.trim().to_owned())
            });
            Some((name.trim().to_owned(), nested))
        })
        .collect()
}

/// The object without the binds graph-sim stores: Graph answers a navigation only expanded.
pub(crate) fn hide_binds(object: &Value) -> Value {
    match object {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.ends_with("@odata.bind"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

// ----- writes --------------------------------------------------------------------------------

/// What a definition value write may leave out: a value `updated` in place keeps its
/// definition unless it binds another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    Added,
    Updated,
}

/// Checks one definition value of a write against the catalog: Graph's 400 message when it
/// does not bind (or binds what does not exist).
pub(crate) fn check_value(catalog: &Collection, value: &Value, write: Write) -> Result<(), String> {
    let Some(map) = value.as_object() else {
        return Err("A definition value is an object.".into());
    };
    if map.contains_key("definition") {
        return Err("The property 'definition' cannot be written inline: bind it with 'definition@odata.bind'.".into());
    }
    let definition = match map.get(DEFINITION_BIND) {
        None if write == Write::Updated => None,
        None => {
            return Err(
                "A definition value needs its definition: 'definition@odata.bind' is required."
                    .into(),
            );
        }
        Some(bind) => {
            let url = bind.as_str().unwrap_or_default();
            let id = bound_definition(url).ok_or_else(|| {
                format!("The bind '{url}' does not name a groupPolicyDefinition.")
            })?;
            if find(&catalog.objects, id).is_none() {
                return Err(format!(
                    "No groupPolicyDefinition with id '{id}' was found."
                ));
            }
            Some(id)
        }
    };
    let presentation_values = match map.get(PRESENTATION_VALUES) {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("'presentationValues' is a collection.".into()),
    };
    for p in presentation_values {
        if p.get("presentation").is_some() {
            return Err("The property 'presentation' cannot be written inline: bind it with 'presentation@odata.bind'.".into());
        }
        let url = p.get(PRESENTATION_BIND).and_then(Value::as_str).ok_or(
            "A presentation value needs its presentation: 'presentation@odata.bind' is required.",
        )?;
        let (of, id) = bound_presentation(url)
            .ok_or_else(|| format!("The bind '{url}' does not name a groupPolicyPresentation."))?;
        if definition.is_some_and(|d| d != of) || find(presentations(catalog, of), id).is_none() {
            return Err(format!(
                "No groupPolicyPresentation with id '{id}' was found on the value's definition."
            ));
        }
    }
    Ok(())
}

/// Stores one checked definition value of template `template` (its presentation values below
/// it) and returns it as stored. An `Updated` value replaces the stored one of its id, keeping
/// its definition unless it binds another, and its presentation values unless it sends them
/// (sent ones keep the ids they name, new ones get new ids).
pub(crate) fn store_value(
    template: &mut Collection,
    template_id: &str,
    value: &Value,
    id: &str,
    new_id: &mut dyn FnMut() -> String,
) -> Value {
    let now = crate::sim::intune_now();
    let values_key = format!("{template_id}/{VALUES}");
    let below = format!("{values_key}/{id}/{PRESENTATION_VALUES}");
    let mut fields = value.as_object().cloned().unwrap_or_default();
    let sent = fields.remove(PRESENTATION_VALUES);
    let existing = template
        .sub_resources
        .get(&values_key)
        .and_then(|items| find(items, id))
        .and_then(Value::as_object)
        .cloned();
    let mut stored: Map<String, Value> = Map::new();
    if let Some(old) = &existing {
        for k in ["createdDateTime", DEFINITION_BIND] {
            if let Some(v) = old.get(k) {
                stored.insert(k.into(), v.clone());
            }
        }
    } else {
        stored.insert("createdDateTime".into(), json!(now));
    }
    stored.extend(fields);
    stored.insert("id".into(), json!(id));
    stored.insert("lastModifiedDateTime".into(), json!(now));
    if let Some(Value::Array(sent)) = sent {
        let old = template
            .sub_resources
            .get(&below)
            .cloned()
            .unwrap_or_default();
        let items = sent
            .into_iter()
            .map(|mut p| {
                if let Some(map) = p.as_object_mut() {
                    let known = map
                        .get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|pid| find(&old, pid).is_some());
                    if !known {
                        map.insert("id".into(), json!(new_id()));
                        map.insert("createdDateTime".into(), json!(now));
                    }
                    map.insert("lastModifiedDateTime".into(), json!(now));
                }
                p
            })
            .collect();
        template.sub_resources.insert(below, items);
    }
    let stored = Value::Object(stored);
    let items = template.sub_resources.entry(values_key).or_default();
    match items
        .iter_mut()
        .find(|v| v.get("id").and_then(Value::as_str) == Some(id))
    {
        Some(slot) => *slot = stored.clone(),
        None => items.push(stored.clone()),
    }
    stored
}

/// `POST {template}/definitionValues`: the value checked and stored; `Err` is the status and
/// Graph's message.
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicydefinitionvalue-create?view=graph-rest-beta
pub(crate) fn create_value(
    tenant: &mut SimTenant,
    template_id: &str,
    body: &Value,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Value, (u16, String)> {
    let catalog = catalog_of(tenant);
    let template = tenant
        .collections
        .get_mut(TEMPLATES)
        .ok_or((404, "Resource not found.".to_owned()))?;
    if find(&template.objects, template_id).is_none() {
        return Err((404, format!("No entity with id '{template_id}' was found.")));
    }
    check_value(&catalog, body, Write::Added).map_err(|message| (400, message))?;
    let value_id = new_id();
    let stored = store_value(template, template_id, body, &value_id, new_id);
    Ok(hide_binds(&stored))
}

/// `POST {template}/definitionValues/{value}/presentationValues`: one presentation value,
/// bound to a presentation of the value's definition; `Err` is the status and Graph's message.
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicypresentationvaluetext-create?view=graph-rest-beta
pub(crate) fn create_presentation_value(
    tenant: &mut SimTenant,
    template_id: &str,
    value_id: &str,
    body: &Value,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Value, (u16, String)> {
    let catalog = catalog_of(tenant);
    let template = tenant
        .collections
        .get_mut(TEMPLATES)
        .ok_or((404, "Resource not found.".to_owned()))?;
    let value = template
        .sub_resources
        .get(&format!("{template_id}/{VALUES}"))
        .and_then(|items| find(items, value_id))
        .ok_or_else(|| (404, format!("No entity with id '{value_id}' was found.")))?;
    // Checked as the value's only option, under the value's own bind.
    let as_value = json!({
        DEFINITION_BIND: value.get(DEFINITION_BIND).cloned().unwrap_or(Value::Null),
        PRESENTATION_VALUES: [body],
    });
    check_value(&catalog, &as_value, Write::Added).map_err(|message| (400, message))?;
    let now = crate::sim::intune_now();
    let mut stored = body.as_object().cloned().unwrap_or_default();
    stored.insert("id".into(), json!(new_id()));
    stored.insert("createdDateTime".into(), json!(now));
    stored.insert("lastModifiedDateTime".into(), json!(now));
    let stored = Value::Object(stored);
    template
        .sub_resources
        .entry(format!(
            "{template_id}/{VALUES}/{value_id}/{PRESENTATION_VALUES}"
        ))
        .or_default()
        .push(stored.clone());
    Ok(hide_binds(&stored))
}

/// `updateDefinitionValues`: every `added` and `updated` value checked first (a refused body
/// changes nothing), then `deletedIds` removed with their presentation values, `updated`
/// ones replaced by id, `added` ones created at the end.
/// https://learn.microsoft.com/graph/api/intune-grouppolicy-grouppolicyconfiguration-updatedefinitionvalues?view=graph-rest-beta
pub(crate) fn update_definition_values(
    template: &mut Collection,
    catalog: &Collection,
    id: &str,
    body: &Map<String, Value>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<(), String> {
    let list = |name: &str| -> Result<Vec<Value>, String> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err(format!("The '{name}' parameter must be a collection.")),
        }
    };
    let (added, updated, deleted) = (list("added")?, list("updated")?, list("deletedIds")?);
    let values_key = format!("{id}/{VALUES}");
    let current = template
        .sub_resources
        .get(&values_key)
        .cloned()
        .unwrap_or_default();
    for v in &added {
        check_value(catalog, v, Write::Added)?;
    }
    let mut updated_ids = Vec::new();
    for v in &updated {
        check_value(catalog, v, Write::Updated)?;
        let vid = v
            .get("id")
            .and_then(Value::as_str)
            .ok_or("Each updated definition value needs its id.")?;
        find(&current, vid)
            .ok_or_else(|| format!("No definition value with id '{vid}' was found."))?;
        updated_ids.push(vid.to_owned());
    }
    let mut deleted_ids = Vec::new();
    for d in &deleted {
        let vid = d.as_str().ok_or("deletedIds holds strings.")?;
        find(&current, vid)
            .ok_or_else(|| format!("No definition value with id '{vid}' was found."))?;
        deleted_ids.push(vid.to_owned());
    }
    for vid in &deleted_ids {
        if let Some(items) = template.sub_resources.get_mut(&values_key) {
            items.retain(|v| v.get("id").and_then(Value::as_str) != Some(vid.as_str()));
        }
        let below = format!("{values_key}/{vid}/");
        template.sub_resources.retain(|k, _| !k.starts_with(&below));
    }
    for (v, vid) in updated.iter().zip(&updated_ids) {
        store_value(template, id, v, vid, new_id);
    }
    for v in &added {
        let vid = new_id();
        store_value(template, id, v, &vid, new_id);
    }
    template.sub_resources.entry(values_key).or_default();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("new{n}")
        }
    }

    fn first_definition(catalog: &Collection) -> (String, String) {
        let definition = catalog
            .objects
            .iter()
            .find(|d| !presentations(catalog, d["id"].as_str().unwrap()).is_empty())
            .unwrap();
        let id = definition["id"].as_str().unwrap().to_owned();
        let presentation = presentations(catalog, &id)[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, presentation)
    }

    #[test]
    fn binds_name_their_definition_and_presentation() {
        let d = "https://graph.microsoft.com/beta/deviceManagement/groupPolicyDefinitions('d1')";
        assert_eq!(bound_definition(d), Some("d1"));
        assert_eq!(
            bound_presentation(&format!("{d}/presentations('p1')")),
            Some(("d1", "p1"))
        );
        assert_eq!(
            bound_definition("https://graph.microsoft.com/beta/groups('d1')"),
            None
        );
        assert_eq!(bound_presentation(d), None);
    }

    #[test]
    fn a_value_without_its_bind_or_with_an_inline_definition_is_refused() {
        let catalog = builtin_catalog();
        let (d, p) = first_definition(&catalog);
        let bind = definition_url(&d);
        let good = json!({"enabled": true, DEFINITION_BIND: bind, "presentationValues": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueText", "value": "x",
             PRESENTATION_BIND: format!("{bind}/presentations('{p}')")}]});
        assert_eq!(check_value(&catalog, &good, Write::Added), Ok(()));
        for bad in [
            json!({"enabled": true}),
            json!({"enabled": true, "definition": {"id": d}}),
            json!({"enabled": true, DEFINITION_BIND: definition_url("nope")}),
            json!({"enabled": true, DEFINITION_BIND: bind, "presentationValues": [{"value": "x"}]}),
            json!({"enabled": true, DEFINITION_BIND: bind, "presentationValues": [
                {"value": "x", "presentation": {"id": p}}]}),
            json!({"enabled": true, DEFINITION_BIND: bind, "presentationValues": [
                {"value": "x", PRESENTATION_BIND: format!("{bind}/presentations('nope')")}]}),
        ] {
            assert!(check_value(&catalog, &bad, Write::Added).is_err(), "{bad}");
        }
        assert_eq!(
            check_value(&catalog, &json!({"enabled": false}), Write::Updated),
            Ok(()),
            "an update keeps the value's definition"
        );
    }

    #[test]
    fn values_are_listed_with_their_definition_and_presentations_expanded() {
        let catalog = builtin_catalog();
        let mut template = Collection::default();
        template.objects.push(json!({"id": "t"}));
        generate_values(&mut template, "t", "c", "m", &mut Rng::derive(1, "x"));
        let values = template.sub_resources["t/definitionValues"].clone();
        let expand = Nested::Values
            .check(Some("definition,presentationValues($expand=presentation)"))
            .unwrap();
        let path = "t/definitionValues";
        for v in &values {
            let shaped = Nested::Values.shape(&catalog, &template, path, v, &expand);
            assert!(shaped.get(DEFINITION_BIND).is_none(), "{shaped}");
            let definition = &shaped["definition"];
            assert!(definition["displayName"].is_string(), "{shaped}");
            let pvs = shaped["presentationValues"].as_array().unwrap();
            let expected = presentations(&catalog, definition["id"].as_str().unwrap());
            assert_eq!(pvs.len(), expected.len(), "{shaped}");
            for pv in pvs {
                assert!(pv["presentation"]["label"].is_string(), "{shaped}");
                assert!(pv.get(PRESENTATION_BIND).is_none(), "{shaped}");
            }
        }
        assert!(Nested::Values.check(Some("settings")).is_err());
        assert!(
            Nested::Values
                .check(Some("presentationValues($expand=settings)"))
                .is_err()
        );
        assert_eq!(
            Nested::of(
                TEMPLATES,
                &format!("{TEMPLATES}/t/definitionValues/v/presentationValues")
            ),
            Some(Nested::PresentationValues)
        );
        assert_eq!(
            Nested::of(TEMPLATES, &format!("{TEMPLATES}/t/assignments")),
            None
        );
    }

    #[test]
    fn a_presentation_value_is_created_only_bound_to_an_option_of_its_values_definition() {
        let mut tenant = SimTenant::default();
        let mut template = Collection::default();
        template.objects.push(json!({"id": "t"}));
        generate_values(&mut template, "t", "c", "m", &mut Rng::derive(2, "x"));
        let value = template.sub_resources["t/definitionValues"][0].clone();
        let vid = value["id"].as_str().unwrap().to_owned();
        let bind = value[DEFINITION_BIND].as_str().unwrap().to_owned();
        tenant.collections.insert(TEMPLATES.into(), template);
        let catalog = builtin_catalog();
        let definition = bound_definition(&bind).unwrap();
        let other = catalog
            .objects
            .iter()
            .map(|d| d["id"].as_str().unwrap())
            .find(|d| *d != definition && !presentations(&catalog, d).is_empty())
            .unwrap();
        let foreign = format!(
            "{}/presentations('{}')",
            definition_url(other),
            presentations(&catalog, other)[0]["id"].as_str().unwrap()
        );
        for bad in [
            json!({"value": "x"}),
            json!({"value": "x", PRESENTATION_BIND: foreign}),
        ] {
            let e = create_presentation_value(&mut tenant, "t", &vid, &bad, &mut counter());
            assert_eq!(e.map_err(|(status, _)| status), Err(400), "{bad}");
        }
        let own = presentations(&catalog, definition)
            .first()
            .expect("the generated value's definition has options");
        let good = json!({"value": "x", PRESENTATION_BIND: format!("{bind}/presentations('{}')", own["id"].as_str().unwrap())});
        let created =
            create_presentation_value(&mut tenant, "t", &vid, &good, &mut counter()).unwrap();
        assert_eq!(created["id"], "new1");
        assert!(created.get(PRESENTATION_BIND).is_none());
    }

    #[test]
    fn update_definition_values_keeps_the_bindings_and_refuses_a_value_without_one() {
        let catalog = builtin_catalog();
        let (d, p) = first_definition(&catalog);
        let bind = definition_url(&d);
        let mut template = Collection::default();
        template.objects.push(json!({"id": "t"}));
        let body = json!({"added": [{"enabled": true, DEFINITION_BIND: bind, "presentationValues": [
            {"value": "a", PRESENTATION_BIND: format!("{bind}/presentations('{p}')")}]}]});
        let mut ids = counter();
        update_definition_values(
            &mut template,
            &catalog,
            "t",
            body.as_object().unwrap(),
            &mut ids,
        )
        .unwrap();
        let values = template.sub_resources["t/definitionValues"].clone();
        assert_eq!(values.len(), 1);
        let vid = values[0]["id"].as_str().unwrap().to_owned();
        let below = format!("t/definitionValues/{vid}/presentationValues");
        assert_eq!(template.sub_resources[&below][0]["value"], "a");
        let pid = template.sub_resources[&below][0]["id"].clone();
        let updated = json!({"updated": [{"id": vid, "enabled": false, DEFINITION_BIND: bind, "presentationValues": [
            {"id": pid, "value": "b", PRESENTATION_BIND: format!("{bind}/presentations('{p}')")}]}]});
        update_definition_values(
            &mut template,
            &catalog,
            "t",
            updated.as_object().unwrap(),
            &mut ids,
        )
        .unwrap();
        assert_eq!(template.sub_resources[&below][0]["value"], "b");
        assert_eq!(
            template.sub_resources[&below][0]["id"], pid,
            "an updated value keeps its id"
        );
        let before = template.sub_resources.clone();
        let unbound = json!({"added": [{"enabled": true}], "deletedIds": [vid]});
        assert!(
            update_definition_values(
                &mut template,
                &catalog,
                "t",
                unbound.as_object().unwrap(),
                &mut ids
            )
            .is_err()
        );
        assert_eq!(
            template.sub_resources, before,
            "a refused body changes nothing"
        );
        let delete = json!({"deletedIds": [vid]});
        update_definition_values(
            &mut template,
            &catalog,
            "t",
            delete.as_object().unwrap(),
            &mut ids,
        )
        .unwrap();
        assert!(template.sub_resources["t/definitionValues"].is_empty());
        assert!(!template.sub_resources.contains_key(&below));
    }
}
