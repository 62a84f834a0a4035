//! The SAM template (`infra/template.yaml`, the deployable truth) held to the code: function
//! crates, environment, table, queues and IAM. Plain tests, no emulators.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use tenantops_aws::{keys, schema};
use tenantops_local::provision::{MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_SECS};

/// Every function crate and the environment variables its one config module reads. A new
/// crate under `functions/` fails `every_function_crate_has_a_config_module_listed_here`
/// until it is added.
const FUNCTION_ENV: &[(&str, &[&str])] = &[
    ("api", &tenantops_api::config::ENV_VARS),
    ("worker", &tenantops_worker::config::ENV_VARS),
    ("scheduler", &tenantops_scheduler::config::ENV_VARS),
    ("reaper", &tenantops_reaper::config::ENV_VARS),
    ("relay", &tenantops_relay::config::ENV_VARS),
    ("notifier", &tenantops_notifier::config::ENV_VARS),
];

/// SQS's default message retention (4 days), for queues that do not set one.
const SQS_DEFAULT_RETENTION_SECS: u64 = 345_600;
/// Lambda's default timeout, for functions (and Globals) that do not set one.
const LAMBDA_DEFAULT_TIMEOUT_SECS: u64 = 3;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn template() -> Value {
    let path = repo_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Directory names of the crates under `functions/`.
fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(repo_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn resources(t: &Value) -> Vec<(String, &Value)> {
    t["Resources"]
        .as_mapping()
        .expect("the template has Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
        .collect()
}

fn of_type<'t>(t: &'t Value, ty: &str) -> Vec<(String, &'t Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect()
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    of_type(t, "AWS::Serverless::Function")
}

/// A function property, falling back to `Globals.Function`.
fn function_prop<'t>(t: &'t Value, function: &'t Value, name: &str) -> &'t Value {
    match &function["Properties"][name] {
        Value::Null => &t["Globals"]["Function"][name],
        v => v,
    }
}

/// The crate directory a function's `CodeUri` points at (`../functions/<name>`), if any.
fn code_crate(function: &Value) -> Option<String> {
    let uri = function["Properties"]["CodeUri"].as_str()?;
    let name = uri
        .trim_end_matches('/')
        .strip_prefix("../functions/")?
        .to_owned();
    (!name.contains('/')).then_some(name)
}

fn function_for_crate<'t>(t: &'t Value, krate: &str) -> (String, &'t Value) {
    let mut found: Vec<_> = functions(t)
        .into_iter()
        .filter(|(_, f)| code_crate(f).as_deref() == Some(krate))
        .collect();
    assert_eq!(found.len(), 1, "functions for crate {krate}");
    found.remove(0)
}

/// An intrinsic function in either form, `!Ref X` or `{Ref: X}`, as (name, argument), with
/// the name without its `Fn::` prefix.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(tagged) => Some((
            tagged.tag.to_string().trim_start_matches('!').to_owned(),
            &tagged.value,
        )),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::"))
                .then(|| (k.trim_start_matches("Fn::").to_owned(), arg))
        }
        _ => None,
    }
}

/// The logical id that `!Ref X`, `!GetAtt X.Attr` or `!GetAtt [X, Attr]` points at.
fn referenced(v: &Value) -> Option<String> {
    let (name, arg) = intrinsic(v)?;
    match (name.as_str(), arg) {
        ("Ref", Value::String(id)) => Some(id.clone()),
        ("GetAtt", Value::String(s)) => s.split('.').next().map(str::to_owned),
        ("GetAtt", Value::Sequence(parts)) => parts.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// A number written either as a YAML number or as a string (CloudFormation takes both).
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Sequence(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// Environment variables of a function, with `Globals.Function.Environment` merged in.
fn environment<'t>(t: &'t Value, function: &'t Value) -> BTreeMap<String, &'t Value> {
    let mut vars = BTreeMap::new();
    for source in [
        &t["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(m) = source.as_mapping() {
            for (k, v) in m {
                vars.insert(k.as_str().unwrap().to_owned(), v);
            }
        }
    }
    vars
}

fn env_var<'t>(env: &BTreeMap<String, &'t Value>, name: &str) -> &'t Value {
    env.get(name)
        .copied()
        .unwrap_or_else(|| panic!("the function does not set {name}"))
}

/// Names of the `[[bin]]` targets in a crate's manifest (the package name if none).
fn binaries(krate: &str) -> Vec<String> {
    let manifest =
        std::fs::read_to_string(repo_root().join("functions").join(krate).join("Cargo.toml"))
            .unwrap();
    let name_in = |section: &str| {
        section.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "name").then(|| value.trim().trim_matches('"').to_owned())
        })
    };
    let bins: Vec<String> = manifest
        .split("[[bin]]")
        .skip(1)
        .filter_map(|s| name_in(s.split("\n[").next().unwrap_or_default()))
        .collect();
    if bins.is_empty() {
        let package = manifest.split("[package]").nth(1).unwrap_or_default();
        name_in(package.split("\n[").next().unwrap_or_default())
            .into_iter()
            .collect()
    } else {
        bins
    }
}

#[test]
fn every_function_crate_has_exactly_one_template_function() {
    let t = template();
    let crates = function_crates();
    assert!(crates.contains("api"), "functions/ lists {crates:?}");
    let mut per_crate: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, f) in functions(&t) {
        let krate = code_crate(f).unwrap_or_else(|| {
            panic!(
                "function {id}: CodeUri {:?} is not ../functions/<crate>",
                f["Properties"]["CodeUri"]
            )
        });
        assert!(
            crates.contains(&krate),
            "function {id} points at ../functions/{krate}, which is not a crate"
        );
        per_crate.entry(krate).or_default().push(id);
    }
    for krate in &crates {
        let ids = per_crate.get(krate).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            ids.len(),
            1,
            "crate functions/{krate} needs exactly one function in the template, has {ids:?}"
        );
    }
}

#[test]
fn every_template_function_builds_its_crates_binary_for_arm64() {
    let t = template();
    for krate in function_crates() {
        let (id, f) = function_for_crate(&t, &krate);
        assert_eq!(
            function_prop(&t, f, "Runtime").as_str(),
            Some("provided.al2023"),
            "{id}"
        );
        assert_eq!(
            strings(function_prop(&t, f, "Architectures")),
            ["arm64"],
            "{id}"
        );
        assert_eq!(
            function_prop(&t, f, "Handler").as_str(),
            Some("bootstrap"),
            "{id}"
        );
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary is not set"));
        let bins = binaries(&krate);
        assert!(
            bins.iter().any(|b| b == binary),
            "{id} builds binary {binary}, functions/{krate} has {bins:?}"
        );
    }
}

#[test]
fn every_function_crate_has_a_config_module_listed_here() {
    let listed: BTreeSet<String> = FUNCTION_ENV.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(
        listed,
        function_crates(),
        "FUNCTION_ENV must name each function crate's config::ENV_VARS"
    );
}

#[test]
fn every_function_sets_exactly_the_environment_its_config_reads() {
    let t = template();
    for (krate, reads) in FUNCTION_ENV {
        let (id, f) = function_for_crate(&t, krate);
        let env = environment(&t, f);
        let set: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        let read: BTreeSet<&str> = reads.iter().copied().collect();
        assert_eq!(read.len(), reads.len(), "{krate}: ENV_VARS has duplicates");
        assert_eq!(
            set, read,
            "{id}: the template's environment (left) differs from functions/{krate}'s config::ENV_VARS (right)"
        );
    }
}

/// Every SQS event source as (name, properties, consuming function's logical id):
/// `AWS::Lambda::EventSourceMapping`s on a queue of the template, and SAM `Events` of
/// `Type: SQS` (which `no_function_uses_a_sam_event_or_managed_policy_that_allows_every_resource`
/// refuses, but which these checks still read). A mapping on an SQS ARN that is no queue of
/// this template, or whose function is no function of it, cannot be checked and fails here.
fn sqs_event_sources(t: &Value) -> Vec<(String, &Value, String)> {
    let queues: BTreeSet<String> = of_type(t, "AWS::SQS::Queue")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let function_ids: BTreeSet<String> = functions(t).into_iter().map(|(id, _)| id).collect();
    let mut sources = Vec::new();
    for (id, f) in functions(t) {
        if let Some(events) = f["Properties"]["Events"].as_mapping() {
            for (name, event) in events {
                if event["Type"].as_str() == Some("SQS") {
                    sources.push((
                        format!("{id}.Events.{}", name.as_str().unwrap()),
                        &event["Properties"],
                        id.clone(),
                    ));
                }
            }
        }
    }
    for (id, mapping) in of_type(t, "AWS::Lambda::EventSourceMapping") {
        let props = &mapping["Properties"];
        let source = &props["EventSourceArn"];
        match referenced(source) {
            Some(q) if queues.contains(&q) => {}
            Some(_) => continue,
            None => {
                assert!(
                    !literals(source).iter().any(|arn| arn.contains(":sqs:")),
                    "{id}: EventSourceArn must be !GetAtt <queue of this template>.Arn"
                );
                continue;
            }
        }
        let function = referenced(&props["FunctionName"])
            .filter(|f| function_ids.contains(f))
            .unwrap_or_else(|| {
                panic!("{id}: FunctionName must be !Ref <function of this template>")
            });
        sources.push((id, props, function));
    }
    sources
}

/// The queue an SQS event source reads: `Queue` of a SAM event, `EventSourceArn` of a mapping.
fn source_queue(name: &str, props: &Value) -> String {
    referenced(&props["Queue"])
        .or_else(|| referenced(&props["EventSourceArn"]))
        .unwrap_or_else(|| panic!("{name}: no queue of this template"))
}

#[test]
fn every_sqs_event_source_reports_batch_item_failures() {
    let t = template();
    let sources = sqs_event_sources(&t);
    assert!(!sources.is_empty(), "the worker consumes the work queue");
    for (name, props, _) in sources {
        assert!(
            strings(&props["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures"),
            "{name}: FunctionResponseTypes must include ReportBatchItemFailures"
        );
    }
}

#[test]
fn every_sqs_consumer_times_out_within_a_sixth_of_its_queues_visibility_timeout() {
    let t = template();
    let sources = sqs_event_sources(&t);
    assert!(!sources.is_empty(), "the worker consumes the work queue");
    for (name, props, function) in sources {
        let queue = source_queue(&name, props);
        let visibility = number(&t["Resources"][queue.as_str()]["Properties"]["VisibilityTimeout"])
            .unwrap_or(30);
        let f = &t["Resources"][function.as_str()];
        let timeout =
            number(function_prop(&t, f, "Timeout")).unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECS);
        assert!(
            visibility >= 6 * timeout,
            "{name}: {queue}'s visibility timeout {visibility}s < 6 x {function}'s timeout {timeout}s"
        );
    }
}

/// Queues some other resource names as its dead-letter target.
fn dead_letter_queues(t: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, in_dead_letter: bool, out: &mut BTreeSet<String>) {
        if in_dead_letter && let Some(id) = referenced(v) {
            out.insert(id);
        }
        match v {
            Value::Mapping(m) => {
                for (k, child) in m {
                    let dl = in_dead_letter
                        || k.as_str().is_some_and(|k| {
                            [
                                "deadLetterTargetArn",
                                "DeadLetterConfig",
                                "DeadLetterQueue",
                                "OnFailure",
                            ]
                            .contains(&k)
                        });
                    walk(child, dl, out);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|i| walk(i, in_dead_letter, out)),
            Value::Tagged(tagged) => walk(&tagged.value, in_dead_letter, out),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(&t["Resources"], false, &mut out);
    out
}

#[test]
fn every_queue_but_a_dead_letter_queue_has_a_redrive_policy() {
    let t = template();
    let dlqs = dead_letter_queues(&t);
    let queues: BTreeMap<String, &Value> = of_type(&t, "AWS::SQS::Queue").into_iter().collect();
    assert!(!queues.is_empty());
    let retention = |q: &Value| {
        number(&q["Properties"]["MessageRetentionPeriod"]).unwrap_or(SQS_DEFAULT_RETENTION_SECS)
    };
    let mut problems = Vec::new();
    for (id, q) in queues.iter().filter(|(id, _)| !dlqs.contains(*id)) {
        let redrive = &q["Properties"]["RedrivePolicy"];
        let Some((target, dlq)) = referenced(&redrive["deadLetterTargetArn"])
            .and_then(|target| queues.get(&target).map(|dlq| (target, dlq)))
        else {
            problems.push(format!(
                "queue {id} is no dead-letter queue and has no RedrivePolicy to a queue of this template"
            ));
            continue;
        };
        if number(&redrive["maxReceiveCount"]).is_none_or(|n| n < 1) {
            problems.push(format!("queue {id}: RedrivePolicy without maxReceiveCount"));
        }
        // A message keeps its first enqueue time in the DLQ: a shorter retention there
        // would drop failed messages on arrival.
        if retention(dlq) <= retention(q) {
            problems.push(format!(
                "dead-letter queue {target} must retain messages longer than {id}"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// An index as compared: its key schema as (attribute, key type) and its projection type.
type Index<'t> = (Vec<(String, String)>, Option<&'t str>);

#[test]
fn the_table_declares_the_stores_keys_indexes_and_ttl() {
    let t = template();
    let tables = of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "the store uses one table");
    let (id, table) = &tables[0];
    let p = &table["Properties"];
    let key_schema = |ks: &Value| -> Vec<(String, String)> {
        ks.as_sequence()
            .unwrap_or_else(|| panic!("{id}: KeySchema"))
            .iter()
            .map(|k| {
                (
                    k["AttributeName"].as_str().unwrap().to_owned(),
                    k["KeyType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let hash_range =
        |pk: &str, sk: &str| vec![(pk.into(), "HASH".into()), (sk.into(), "RANGE".into())];

    assert_eq!(
        key_schema(&p["KeySchema"]),
        hash_range(keys::PK, keys::SK),
        "{id}"
    );

    let indexes: BTreeMap<String, Index> = p["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{id}: GlobalSecondaryIndexes"))
        .iter()
        .map(|i| {
            (
                i["IndexName"].as_str().unwrap().to_owned(),
                (
                    key_schema(&i["KeySchema"]),
                    i["Projection"]["ProjectionType"].as_str(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<String, Index> = schema::INDEXES
        .iter()
        .map(|(name, pk, sk)| (name.to_string(), (hash_range(pk, sk), Some("ALL"))))
        .collect();
    assert_eq!(
        indexes, expected,
        "{id}: indexes (template left, schema.rs right)"
    );

    let attributes: BTreeMap<&str, &str> = p["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap(),
                a["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    let mut key_attributes = vec![keys::PK, keys::SK];
    for (_, pk, sk) in schema::INDEXES {
        key_attributes.extend([pk, sk]);
    }
    let expected: BTreeMap<&str, &str> = key_attributes.into_iter().map(|a| (a, "S")).collect();
    assert_eq!(attributes, expected, "{id}: AttributeDefinitions");

    let ttl = &p["TimeToLiveSpecification"];
    assert_eq!(
        ttl["AttributeName"].as_str(),
        Some(keys::TTL),
        "{id}: TTL attribute"
    );
    assert_eq!(ttl["Enabled"].as_bool(), Some(true), "{id}: TTL enabled");
    assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"), "{id}");
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true),
        "{id}: point-in-time recovery"
    );

    // The API's table is this one.
    let (_, api) = function_for_crate(&t, "api");
    let env = environment(&t, api);
    let table_var = env_var(&env, tenantops_api::config::TABLE_NAME);
    assert_eq!(referenced(table_var).as_deref(), Some(id.as_str()));
}

#[test]
fn the_work_queue_redrives_and_hides_messages_like_the_local_stack() {
    let t = template();
    let (_, relay) = function_for_crate(&t, "relay");
    let env = environment(&t, relay);
    let queue = referenced(env_var(&env, tenantops_relay::config::QUEUE_URL))
        .expect("TENANTOPS_QUEUE_URL is !Ref <work queue>");
    let q = &t["Resources"][queue.as_str()];
    assert_eq!(q["Type"].as_str(), Some("AWS::SQS::Queue"), "{queue}");
    let p = &q["Properties"];
    assert_eq!(
        number(&p["RedrivePolicy"]["maxReceiveCount"]),
        Some(u64::from(MAX_RECEIVE_COUNT)),
        "{queue}: maxReceiveCount vs tools/local-stack provision::MAX_RECEIVE_COUNT"
    );
    assert_eq!(
        number(&p["VisibilityTimeout"]),
        Some(u64::from(VISIBILITY_TIMEOUT_SECS)),
        "{queue}: VisibilityTimeout vs tools/local-stack provision::VISIBILITY_TIMEOUT_SECS"
    );
}

/// The literal strings a policy value can take: plain strings, `!Sub` templates (with each
/// `${...}` replaced by `${}`, so a reference cannot pass for a literal `*` or split an ARN at
/// `::`), both branches of `!If`, and lists of these. References (`!Ref`, `!GetAtt`) name one
/// resource and yield nothing.
fn literals(v: &Value) -> Vec<String> {
    fn blank_substitutions(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            out.push_str("${}");
            rest = rest[start..].split_once('}').map_or("", |(_, after)| after);
        }
        out.push_str(rest);
        out
    }
    if let Some((name, arg)) = intrinsic(v) {
        return match (name.as_str(), arg) {
            ("Sub", Value::String(s)) => vec![blank_substitutions(s)],
            ("Sub", Value::Sequence(parts)) => parts
                .first()
                .and_then(Value::as_str)
                .map(blank_substitutions)
                .into_iter()
                .collect(),
            ("If", Value::Sequence(parts)) => parts.iter().skip(1).flat_map(literals).collect(),
            _ => vec![],
        };
    }
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(literals).collect(),
        _ => vec![],
    }
}

/// An action with any wildcard: `*`, `dynamodb:*`, `s3:Get*`.
fn is_wildcard_action(action: &str) -> bool {
    action.contains('*')
}

/// A resource that is `*`, has `*` for a whole ARN field (service, region, account or
/// resource), or is every resource of a type (`table/*`). A wildcard after a specific prefix
/// (`secret:tenantops/dev/*`, `${Table.Arn}/index/*`, `bucket/*` in S3) is scoped.
fn is_wildcard_resource(resource: &str) -> bool {
    let resource = resource.trim();
    let fields: Vec<&str> = resource.split(':').collect();
    if resource == "*" || fields.contains(&"*") {
        return true;
    }
    if fields.len() >= 6 && fields[0] == "arn" && fields[2] != "s3" {
        let name = fields[5..].join(":");
        if let Some((kind, "*")) = name.split_once('/') {
            return !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        }
    }
    false
}

/// The one managed policy a function may name: SAM attaches it to every role it creates
/// anyway (CloudWatch Logs only).
const BASIC_EXECUTION_ROLE: &str = "AWSLambdaBasicExecutionRole";

/// SAM event types that make SAM attach an AWS managed policy allowing its actions on every
/// resource of the service (Resource "*"), and that policy.
const SAM_EVENTS_WITH_MANAGED_POLICIES: &[(&str, &str)] = &[
    ("SQS", "AWSLambdaSQSQueueExecutionRole"),
    ("Kinesis", "AWSLambdaKinesisExecutionRole"),
    ("DynamoDB", "AWSLambdaDynamoDBExecutionRole"),
    ("MSK", "AWSLambdaMSKExecutionRole"),
];

/// Every IAM statement of a function's `Policies` (and of IAM resources in the template), as
/// (where, statement). Managed policies named by string cannot be checked here and are
/// refused; SAM policy templates must name their resource.
fn policy_statements(t: &Value) -> Vec<(String, &Value)> {
    fn document<'t>(at: String, doc: &'t Value, out: &mut Vec<(String, &'t Value)>) {
        match &doc["Statement"] {
            Value::Sequence(items) => {
                for (i, s) in items.iter().enumerate() {
                    out.push((format!("{at}.Statement[{i}]"), s));
                }
            }
            statement @ Value::Mapping(_) => out.push((format!("{at}.Statement"), statement)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, f) in functions(t) {
        let policies = match &f["Properties"]["Policies"] {
            Value::Sequence(items) => items.iter().collect(),
            Value::Null => vec![],
            single => vec![single],
        };
        for (i, policy) in policies.into_iter().enumerate() {
            let at = format!("{id}.Policies[{i}]");
            match policy {
                Value::Mapping(m) if m.contains_key("Statement") => document(at, policy, &mut out),
                Value::Mapping(m) => {
                    for (template, params) in m {
                        assert!(
                            params.as_mapping().is_some_and(|p| !p.is_empty()),
                            "{at}: SAM policy template {template:?} names no resource"
                        );
                    }
                }
                Value::String(name) if name == BASIC_EXECUTION_ROLE => {}
                other => panic!("{at}: {other:?} cannot be checked; use inline statements"),
            }
        }
    }
    for ty in [
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
    ] {
        for (id, r) in of_type(t, ty) {
            let p = &r["Properties"];
            document(
                format!("{id}.PolicyDocument"),
                &p["PolicyDocument"],
                &mut out,
            );
            if let Some(inline) = p["Policies"].as_sequence() {
                for (i, policy) in inline.iter().enumerate() {
                    document(
                        format!("{id}.Policies[{i}]"),
                        &policy["PolicyDocument"],
                        &mut out,
                    );
                }
            }
            if let Some(arns) = p["ManagedPolicyArns"].as_sequence() {
                assert!(
                    arns.is_empty(),
                    "{id}: managed policies cannot be checked here"
                );
            }
        }
    }
    out
}

#[test]
fn no_function_policy_allows_every_action_or_every_resource() {
    let t = template();
    let statements = policy_statements(&t);
    assert!(!statements.is_empty(), "the api function has a policy");
    for (at, s) in statements {
        if s["Effect"].as_str() != Some("Allow") {
            continue;
        }
        assert!(
            s["NotAction"].is_null() && s["NotResource"].is_null(),
            "{at}: Allow with NotAction/NotResource allows nearly everything"
        );
        let actions = literals(&s["Action"]);
        assert!(!actions.is_empty(), "{at}: no Action");
        for action in actions {
            assert!(
                !is_wildcard_action(&action),
                "{at}: wildcard action {action:?}"
            );
        }
        assert!(!s["Resource"].is_null(), "{at}: no Resource");
        for resource in literals(&s["Resource"]) {
            assert!(
                !is_wildcard_resource(&resource),
                "{at}: wildcard resource {resource:?}"
            );
        }
    }
}

#[test]
fn no_function_uses_a_sam_event_or_managed_policy_that_allows_every_resource() {
    let t = template();
    let mut problems = Vec::new();
    for (id, f) in functions(&t) {
        if let Some(events) = f["Properties"]["Events"].as_mapping() {
            for (name, event) in events {
                let ty = event["Type"].as_str().unwrap_or_default();
                if let Some((_, managed)) = SAM_EVENTS_WITH_MANAGED_POLICIES
                    .iter()
                    .find(|(event_type, _)| *event_type == ty)
                {
                    problems.push(format!(
                        "{id}.Events.{}: a SAM `Type: {ty}` event makes SAM attach the managed \
                         policy {managed}, which allows its actions on every resource \
                         (Resource \"*\"); declare an AWS::Lambda::EventSourceMapping instead \
                         and allow those actions on the source's ARN in {id}'s Policies",
                        name.as_str().unwrap_or_default()
                    ));
                }
            }
        }
        let policies = match &f["Properties"]["Policies"] {
            Value::Sequence(items) => items.iter().collect(),
            Value::Null => vec![],
            single => vec![single],
        };
        for (i, policy) in policies.into_iter().enumerate() {
            let named = match policy {
                Value::Mapping(_) => continue,
                Value::String(name) if name == BASIC_EXECUTION_ROLE => continue,
                Value::String(name) => name.clone(),
                other => format!("{other:?}"),
            };
            problems.push(format!(
                "{id}.Policies[{i}]: managed policy {named} cannot be held to least privilege \
                 here (AWS managed policies mostly allow Resource \"*\"); use inline \
                 statements on the template's resources (only {BASIC_EXECUTION_ROLE} may be named)"
            ));
        }
        if !f["Properties"]["Role"].is_null() {
            problems.push(format!(
                "{id}: Role replaces the role SAM builds from Policies, which these checks read"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The (lowercased action, resource) pairs a function's Allow statements grant, each
/// resource a logical id (`Some`) or a literal (`None`, with its text).
fn grants(t: &Value, id: &str) -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    for (_, s) in statements_of(t, id) {
        if s["Effect"].as_str() != Some("Allow") {
            continue;
        }
        let resources: Vec<(Option<String>, String)> = match &s["Resource"] {
            Value::Sequence(items) => items
                .iter()
                .map(|r| (referenced(r), literals(r).concat()))
                .collect(),
            single => vec![(referenced(single), literals(single).concat())],
        };
        for action in literals(&s["Action"]) {
            for (reference, literal) in &resources {
                out.push((
                    action.to_ascii_lowercase(),
                    reference.clone(),
                    literal.clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_sqs_consumer_may_poll_its_queue_and_no_other() {
    let t = template();
    for (name, props, function) in sqs_event_sources(&t) {
        let queue = source_queue(&name, props);
        let grants = grants(&t, &function);
        for action in [
            "sqs:receivemessage",
            "sqs:deletemessage",
            "sqs:getqueueattributes",
        ] {
            assert!(
                grants
                    .iter()
                    .any(|(a, r, _)| a == action && r.as_deref() == Some(queue.as_str())),
                "{name}: {function} must allow {action} on !GetAtt {queue}.Arn (the mapping \
                 polls with the function's role)"
            );
        }
        for (action, reference, literal) in grants.iter().filter(|(a, ..)| a.starts_with("sqs:")) {
            assert!(
                action == "sqs:sendmessage" || reference.as_deref() == Some(queue.as_str()),
                "{function}: {action} on {} is not its queue {queue}",
                reference.as_deref().unwrap_or(literal)
            );
        }
    }
}

#[test]
fn the_worker_holds_only_the_table_actions_its_code_uses() {
    let t = template();
    let (id, worker) = function_for_crate(&t, "worker");
    let table = referenced(env_var(
        &environment(&t, worker),
        tenantops_worker::config::TABLE_NAME,
    ))
    .expect("the worker's TENANTOPS_TABLE_NAME is !Ref <table>");
    let grants = grants(&t, &id);
    let dynamo: Vec<_> = grants
        .iter()
        .filter(|(a, ..)| a.starts_with("dynamodb:"))
        .collect();
    for (action, reference, literal) in &dynamo {
        assert_eq!(
            reference.as_deref(),
            Some(table.as_str()),
            "{id}: {action} on {literal:?}: the worker reads and writes the base table only \
             (no index: inventory, directory caches and notifications are base-table queries)"
        );
    }
    let actions: BTreeSet<&str> = dynamo.iter().map(|(a, ..)| a.as_str()).collect();
    // get_run, get_tenant, get_connection, sync_state: GetItem. transition: TransactWriteItems
    // of Updates and a Delete. put_sync_state, put_notification: PutItem, DeleteItem.
    // mark_unseen_deleted: UpdateItem. put_inventory, put/delete_directory: BatchWriteItem.
    // inventory, directory: Query. Restore items: TransactWriteItems with a ConditionCheck
    // on the run's lease. No BatchGetItem, no Scan.
    let used: BTreeSet<&str> = [
        "dynamodb:conditioncheckitem",
        "dynamodb:getitem",
        "dynamodb:putitem",
        "dynamodb:updateitem",
        "dynamodb:deleteitem",
        "dynamodb:batchwriteitem",
        "dynamodb:query",
    ]
    .into_iter()
    .collect();
    assert_eq!(
        actions, used,
        "{id}: DynamoDB actions (template left, what the worker's code calls right)"
    );
}

#[test]
fn the_wildcard_check_tells_scoped_from_unscoped() {
    for action in ["*", "dynamodb:*", "s3:Get*"] {
        assert!(is_wildcard_action(action), "{action}");
    }
    assert!(!is_wildcard_action("dynamodb:PutItem"));
    for resource in [
        "*",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:*",
        "arn:${}:sqs:${}:${}:*",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/*",
        "arn:aws:s3:::*",
    ] {
        assert!(is_wildcard_resource(resource), "{resource}");
    }
    for resource in [
        "arn:${}:secretsmanager:${}:${}:secret:tenantops/${}/*",
        "${}/index/*",
        "arn:aws:s3:::tenantops-snapshots/*",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/tenantops/index/*",
    ] {
        assert!(!is_wildcard_resource(resource), "{resource}");
    }
    let sub: Value =
        serde_yaml_ng::from_str("!Sub arn:${AWS::Partition}:sqs:*:${AWS::AccountId}:q").unwrap();
    assert_eq!(literals(&sub), ["arn:${}:sqs:*:${}:q"]);
}

#[test]
fn the_api_may_write_but_never_read_secrets_and_only_under_its_prefix() {
    let t = template();
    let (id, api) = function_for_crate(&t, "api");
    let env = environment(&t, api);
    let prefix = literals(env_var(&env, tenantops_api::config::SECRET_PREFIX));
    assert_eq!(
        prefix.len(),
        1,
        "{id}: TENANTOPS_SECRET_PREFIX is one literal or !Sub"
    );
    let prefix = &prefix[0];
    assert!(
        prefix.ends_with('/'),
        "{id}: secret prefix {prefix:?} ends with /"
    );
    let statements: Vec<_> = policy_statements(&t)
        .into_iter()
        .filter(|(at, _)| at.starts_with(&format!("{id}.")))
        .collect();
    let mut writes_secrets = false;
    for (at, s) in statements {
        let actions = literals(&s["Action"]);
        for action in &actions {
            let a = action.to_ascii_lowercase();
            assert!(
                a != "secretsmanager:getsecretvalue" && a != "secretsmanager:batchgetsecretvalue",
                "{at}: the API must never read secrets"
            );
            // Restore previews read snapshots; nothing else of S3 or KMS.
            assert!(
                !a.starts_with("s3:") || a == "s3:getobject",
                "{at}: the API only reads snapshots"
            );
            assert!(
                !a.starts_with("kms:") || a == "kms:decrypt",
                "{at}: the API only decrypts snapshots"
            );
            if a == "s3:getobject" {
                for r in literals(&s["Resource"]) {
                    assert!(
                        r.ends_with("/snapshots/*"),
                        "{at}: reads only snapshots/*, not {r}"
                    );
                }
            }
        }
        if actions.iter().any(|a| a.starts_with("secretsmanager:")) {
            writes_secrets = true;
            for resource in literals(&s["Resource"]) {
                assert!(
                    resource.ends_with(&format!(":secret:{prefix}*")),
                    "{at}: secret resource {resource:?} is not under {prefix:?}"
                );
            }
        }
    }
    assert!(writes_secrets, "{id} stores provider-connection secrets");
}

/// The statements of one function's `Policies`.
fn statements_of<'t>(t: &'t Value, id: &str) -> Vec<(String, &'t Value)> {
    let prefix = format!("{id}.");
    policy_statements(t)
        .into_iter()
        .filter(|(at, _)| at.starts_with(&prefix))
        .collect()
}

/// The logical ids a policy `Resource` (one value or a list) references; `None` for each
/// entry that is no `!Ref` or `!GetAtt` (a literal ARN, a `!Sub`).
fn resource_refs(v: &Value) -> Vec<Option<String>> {
    match v {
        Value::Sequence(items) => items.iter().map(referenced).collect(),
        single => vec![referenced(single)],
    }
}

#[test]
fn the_worker_consumes_the_work_queue_and_reports_failed_messages_one_by_one() {
    let t = template();
    let (id, worker) = function_for_crate(&t, "worker");
    let env = environment(&t, worker);
    let (_, api) = function_for_crate(&t, "api");
    let api_env = environment(&t, api);
    let (_, relay) = function_for_crate(&t, "relay");
    let relay_env = environment(&t, relay);
    let queue = referenced(env_var(&env, tenantops_worker::config::QUEUE_URL))
        .expect("the worker's TENANTOPS_QUEUE_URL is !Ref <work queue>");
    assert_eq!(
        referenced(env_var(&relay_env, tenantops_relay::config::QUEUE_URL)).as_deref(),
        Some(queue.as_str()),
        "{id}: the worker's queue is the one the relay dispatches to"
    );
    assert_eq!(
        referenced(env_var(&env, tenantops_worker::config::TABLE_NAME)),
        referenced(env_var(&api_env, tenantops_api::config::TABLE_NAME)),
        "{id}: the worker's table is the API's"
    );

    let sources: Vec<_> = sqs_event_sources(&t)
        .into_iter()
        .filter(|(_, _, function)| *function == id)
        .collect();
    assert_eq!(sources.len(), 1, "{id}: one SQS event source");
    let (name, props, _) = &sources[0];
    assert_eq!(
        source_queue(name, props),
        queue,
        "{name}: consumes the work queue"
    );
    assert!(
        strings(&props["FunctionResponseTypes"]).contains(&"ReportBatchItemFailures"),
        "{name}: the worker returns failed messages one by one (ReportBatchItemFailures)"
    );

    let visibility =
        number(&t["Resources"][queue.as_str()]["Properties"]["VisibilityTimeout"]).unwrap_or(30);
    let timeout =
        number(function_prop(&t, worker, "Timeout")).unwrap_or(LAMBDA_DEFAULT_TIMEOUT_SECS);
    assert!(
        visibility >= 6 * timeout,
        "{queue}: visibility timeout {visibility}s < 6 x {id}'s timeout {timeout}s"
    );
    assert!(
        tenantops_worker::LEASE.num_seconds() > i64::try_from(timeout).unwrap(),
        "{id}: the run lease ({}s) must outlast the function timeout ({timeout}s)",
        tenantops_worker::LEASE.num_seconds()
    );

    // The event source never asks for more instances than the function may run (that would
    // throttle), and SQS needs at least 2.
    let reserved = &worker["Properties"]["ReservedConcurrentExecutions"];
    assert!(
        !reserved.is_null(),
        "{id}: ReservedConcurrentExecutions bounds the Graph calls in flight"
    );
    let maximum = &props["ScalingConfig"]["MaximumConcurrency"];
    assert_eq!(
        maximum, reserved,
        "{name}: ScalingConfig.MaximumConcurrency is {id}'s reserved concurrency"
    );
    let floor = match referenced(maximum) {
        Some(parameter) => number(&t["Parameters"][parameter.as_str()]["MinValue"]),
        None => number(maximum),
    };
    assert!(
        floor.is_some_and(|n| n >= 2),
        "{name}: MaximumConcurrency must be at least 2 (a parameter needs MinValue: 2)"
    );
}

#[test]
fn the_worker_only_reads_secrets_and_only_under_the_apis_prefix() {
    let t = template();
    let (_, api) = function_for_crate(&t, "api");
    let prefix = literals(env_var(
        &environment(&t, api),
        tenantops_api::config::SECRET_PREFIX,
    ));
    assert_eq!(
        prefix.len(),
        1,
        "TENANTOPS_SECRET_PREFIX is one literal or !Sub"
    );
    let prefix = &prefix[0];
    let (id, _) = function_for_crate(&t, "worker");
    let mut reads_secrets = false;
    let mut denies_webhook_secrets = false;
    for (at, s) in statements_of(&t, &id) {
        let actions: Vec<String> = literals(&s["Action"])
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        if !actions.iter().any(|a| a.starts_with("secretsmanager:")) {
            continue;
        }
        if s["Effect"].as_str() == Some("Deny") {
            denies_webhook_secrets |= actions == ["secretsmanager:getsecretvalue"]
                && literals(&s["Resource"])
                    == [format!(
                        "arn:${{}}:secretsmanager:${{}}:${{}}:secret:{prefix}webhooks/*"
                    )];
            continue;
        }
        reads_secrets = true;
        assert_eq!(
            actions,
            ["secretsmanager:getsecretvalue"],
            "{at}: the worker reads secrets and nothing else"
        );
        let resources = literals(&s["Resource"]);
        assert!(
            !resources.is_empty() && resource_refs(&s["Resource"]).iter().all(Option::is_none),
            "{at}: secret resources are ARNs under the prefix"
        );
        for resource in resources {
            assert!(
                resource.ends_with(&format!(":secret:{prefix}*")),
                "{at}: secret resource {resource:?} is not under {prefix:?}"
            );
        }
    }
    assert!(reads_secrets, "{id} reads provider-connection secrets");
    assert!(
        denies_webhook_secrets,
        "{id}: a Deny of GetSecretValue on {prefix}webhooks/* (the notifier's secrets)"
    );
}

#[test]
fn functions_publish_events_only_to_the_stacks_bus() {
    let t = template();
    let buses: BTreeSet<String> = of_type(&t, "AWS::Events::EventBus")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let (_, worker) = function_for_crate(&t, "worker");
    let bus = referenced(env_var(
        &environment(&t, worker),
        tenantops_worker::config::EVENT_BUS_NAME,
    ))
    .expect("the worker's TENANTOPS_EVENT_BUS_NAME is !Ref <bus>");
    assert!(
        buses.contains(&bus),
        "{bus} is no event bus of this template"
    );
    // The worker publishes Started and Completed, the reaper the Completed of what it fails,
    // the API the Completed of a queued run it cancels (a start itself publishes nothing:
    // `start::a_new_start_costs_one_transaction_and_one_send...` counts its calls).
    // The scheduler publishes `Schedule SlotMissed` for the slots it recorded as missed.
    for (krate, should_publish) in [
        ("api", true),
        ("worker", true),
        ("reaper", true),
        ("scheduler", true),
    ] {
        let (id, _) = function_for_crate(&t, krate);
        let mut publishes = false;
        for (at, s) in statements_of(&t, &id) {
            let actions = literals(&s["Action"]);
            if !actions.iter().any(|a| a.starts_with("events:")) {
                continue;
            }
            publishes = true;
            assert!(
                should_publish,
                "{at}: {id} publishes no events; {actions:?} must not be allowed"
            );
            assert_eq!(actions, ["events:PutEvents"], "{at}");
            assert_eq!(
                resource_refs(&s["Resource"]),
                [Some(bus.clone())],
                "{at}: events:PutEvents on the stack's bus only"
            );
        }
        if should_publish {
            assert!(publishes, "{id} publishes run lifecycle events");
        }
    }
}

#[test]
fn every_function_logs_json_to_its_own_log_group_and_alarms_on_errors_and_throttles() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    for (id, f) in functions(&t) {
        let logging = &f["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{id}");
        let group = referenced(&logging["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is !Ref <log group>"));
        let g = &t["Resources"][group.as_str()];
        assert_eq!(g["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{group}");
        assert!(
            !g["Properties"]["RetentionInDays"].is_null(),
            "{group}: RetentionInDays"
        );
        let function_name = literals(&f["Properties"]["FunctionName"]);
        assert_eq!(
            function_name.len(),
            1,
            "{id}: FunctionName names its log group"
        );
        assert_eq!(
            literals(&g["Properties"]["LogGroupName"]),
            [format!("/aws/lambda/{}", function_name[0])],
            "{group}: /aws/lambda/<{id}'s FunctionName>"
        );
        for metric in ["Errors", "Throttles"] {
            let watched = alarms.iter().any(|(_, a)| {
                let p = &a["Properties"];
                p["Namespace"].as_str() == Some("AWS/Lambda")
                    && p["MetricName"].as_str() == Some(metric)
                    && p["Dimensions"].as_sequence().is_some_and(|ds| {
                        ds.iter().any(|d| {
                            d["Name"].as_str() == Some("FunctionName")
                                && referenced(&d["Value"]).as_deref() == Some(id.as_str())
                        })
                    })
            });
            assert!(watched, "{id}: no alarm on its {metric}");
        }
    }
}

/// The API function's HttpApi events: (route key, authorizer) per event.
fn api_routes(t: &Value) -> Vec<(String, String)> {
    let (id, api) = function_for_crate(t, "api");
    let events = api["Properties"]["Events"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{id} has no Events"));
    events
        .values()
        .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        .map(|e| {
            let p = &e["Properties"];
            let key = format!(
                "{} {}",
                p["Method"].as_str().unwrap_or("ANY").to_ascii_uppercase(),
                p["Path"].as_str().unwrap_or_default()
            );
            let auth = p["Auth"]["Authorizer"]
                .as_str()
                .unwrap_or("(default)")
                .to_owned();
            (key, auth)
        })
        .collect()
}

#[test]
fn the_template_opens_exactly_the_apis_public_routes_and_guards_the_rest() {
    let t = template();
    let routes = api_routes(&t);
    let open: BTreeSet<&str> = routes
        .iter()
        .filter(|(_, auth)| auth == "NONE")
        .map(|(key, _)| key.as_str())
        .collect();
    let public: BTreeSet<&str> = tenantops_api::PUBLIC_ROUTES.iter().copied().collect();
    assert_eq!(open, public, "HttpApi events with `Authorizer: NONE`");
    let guarded: Vec<&(String, String)> = routes.iter().filter(|(_, a)| a != "NONE").collect();
    assert_eq!(
        guarded,
        vec![&("ANY /v1/{proxy+}".to_owned(), "JwtAuthorizer".to_owned())],
        "every other route goes through the JWT authorizer"
    );
    for key in tenantops_api::PUBLIC_ROUTES {
        assert!(
            tenantops_api::ROUTES.contains(key),
            "{key} is public but not served"
        );
    }
}

#[test]
fn the_reaper_queries_only_the_active_index_and_touches_only_its_queues() {
    let t = template();
    let (id, reaper) = function_for_crate(&t, "reaper");
    let env = environment(&t, reaper);
    let of = |name| {
        referenced(env_var(&env, name)).unwrap_or_else(|| panic!("{id}: {name} is !Ref <resource>"))
    };
    let table = of(tenantops_reaper::config::TABLE_NAME);
    let queue = of(tenantops_reaper::config::QUEUE_URL);
    let dead_letters = of(tenantops_reaper::config::DEAD_LETTER_QUEUE_URL);
    assert_eq!(
        referenced(
            &t["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        ),
        Some(dead_letters.clone()),
        "{id}: drains the work queue's own dead-letter queue"
    );
    let index_arn = format!("${{}}/index/{}", keys::GSI3);
    let mut dynamo = BTreeSet::new();
    for (action, reference, literal) in grants(&t, &id) {
        match action.split_once(':') {
            Some(("dynamodb", _)) if action == "dynamodb:query" => {
                assert_eq!(
                    (reference, literal.as_str()),
                    (None, index_arn.as_str()),
                    "{id}: Query on !Sub ${{{table}.Arn}}/index/GSI3 only (no base-table or other index queries, no Scan)"
                );
                dynamo.insert(action);
            }
            Some(("dynamodb", _)) => {
                assert_eq!(reference.as_deref(), Some(table.as_str()), "{id}: {action}");
                dynamo.insert(action);
            }
            Some(("sqs", _)) => {
                // Re-dispatches and the backlog read on the work queue; the drain on the
                // dead-letter queue.
                let expected =
                    if ["sqs:sendmessage", "sqs:getqueueattributes"].contains(&action.as_str()) {
                        &queue
                    } else {
                        &dead_letters
                    };
                assert!(
                    [
                        "sqs:sendmessage",
                        "sqs:getqueueattributes",
                        "sqs:receivemessage",
                        "sqs:deletemessage"
                    ]
                    .contains(&action.as_str()),
                    "{id}: {action} is more than reading the backlog, re-dispatching and draining"
                );
                assert_eq!(
                    reference.as_deref(),
                    Some(expected.as_str()),
                    "{id}: {action}"
                );
            }
            _ => {}
        }
    }
    // stale_runs: Query. get_dispatched: GetItem. postpone and mark_redispatched: UpdateItem. fail_stale and
    // fail_exhausted: TransactWriteItems of an Update on the run and an Update or Delete on
    // its lock. put_notification: PutItem.
    let used: BTreeSet<String> = [
        "dynamodb:query",
        "dynamodb:getitem",
        "dynamodb:updateitem",
        "dynamodb:deleteitem",
        "dynamodb:putitem",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        dynamo, used,
        "{id}: DynamoDB actions (template left, code right)"
    );
}

#[test]
fn the_parts_of_continued_runs_expire_and_nothing_else_in_the_snapshot_bucket_does() {
    let t = template();
    let rules = t["Resources"]["SnapshotBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .expect("the snapshot bucket has lifecycle rules");
    let prefixes: Vec<&str> = rules
        .iter()
        .map(|r| {
            r["Prefix"]
                .as_str()
                .expect("every rule is scoped to a prefix")
        })
        .collect();
    assert_eq!(prefixes, [tenantops_aws::snapshots::RUN_PARTS_PREFIX]);
    let rule = &rules[0];
    assert_eq!(rule["Status"].as_str(), Some("Enabled"));
    let days = number(&rule["ExpirationInDays"]).expect("the parts expire");
    assert!(
        (1..=30).contains(&days),
        "run parts expire after {days} days"
    );
}

/// A start is one DynamoDB write: the API and the scheduler may not touch SQS at all, and the
/// relay, which dispatches new runs, may send to the work queue and its own dead-letter queue
/// only.
#[test]
fn only_the_relay_dispatches_new_runs() {
    let t = template();
    for krate in ["api", "scheduler"] {
        let (id, _) = function_for_crate(&t, krate);
        let sqs: Vec<_> = grants(&t, &id)
            .into_iter()
            .filter(|(action, _, _)| action.starts_with("sqs:"))
            .collect();
        assert!(sqs.is_empty(), "{id} may use SQS: {sqs:?}");
    }
    let (id, _) = function_for_crate(&t, "relay");
    let mut sqs: Vec<_> = grants(&t, &id)
        .into_iter()
        .filter(|(action, _, _)| action.starts_with("sqs:"))
        .map(|(action, resource, _)| (action, resource.unwrap_or_default()))
        .collect();
    sqs.sort();
    assert_eq!(
        sqs,
        [
            (
                "sqs:sendmessage".to_owned(),
                "RelayDeadLetterQueue".to_owned()
            ),
            ("sqs:sendmessage".to_owned(), "WorkQueue".to_owned()),
        ]
    );
}

/// The notifier holds what its code calls and nothing more: the table's GetItem (a
/// subscription, a drift report), Query (a workspace's subscriptions) and PutItem (the
/// delivery log); GetSecretValue on webhook secrets only, never a provider connection's; its
/// queue's consume actions and sends to it and its dead-letter queue. Deployed, its URL policy
/// is fixed (no variable loosens it: the local host's `TENANTOPS_LOCAL_WEBHOOK_ALLOW_LOOPBACK`
/// is set on no function).
#[test]
fn the_notifier_reads_only_webhook_secrets_and_touches_only_its_table_actions_and_queues() {
    let t = template();
    let (id, notifier) = function_for_crate(&t, "notifier");
    let env = environment(&t, notifier);
    let of = |name| {
        referenced(env_var(&env, name)).unwrap_or_else(|| panic!("{id}: {name} is !Ref <resource>"))
    };
    let table = of(tenantops_notifier::config::TABLE_NAME);
    let queue = of(tenantops_notifier::config::QUEUE_URL);
    let dead_letters = of(tenantops_notifier::config::DEAD_LETTER_QUEUE_URL);
    assert_eq!(
        referenced(
            &t["Resources"][queue.as_str()]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        ),
        Some(dead_letters.clone()),
        "{id}: its queue redrives to its dead-letter queue"
    );
    let (_, api) = function_for_crate(&t, "api");
    let prefix = literals(env_var(
        &environment(&t, api),
        tenantops_api::config::SECRET_PREFIX,
    ))
    .concat();
    let mut granted = BTreeSet::new();
    for (action, reference, literal) in grants(&t, &id) {
        match action.split_once(':') {
            Some(("dynamodb", _)) => {
                assert_eq!(reference.as_deref(), Some(table.as_str()), "{id}: {action}");
            }
            Some(("secretsmanager", _)) => {
                assert_eq!(action, "secretsmanager:getsecretvalue", "{id}: reads only");
                assert!(
                    literal.ends_with(&format!(":secret:{prefix}webhooks/*")),
                    "{id}: {literal} is not the webhook secrets' prefix"
                );
            }
            Some(("sqs", _)) => {
                let expected = if reference.as_deref() == Some(dead_letters.as_str()) {
                    action == "sqs:sendmessage"
                } else {
                    reference.as_deref() == Some(queue.as_str())
                };
                assert!(expected, "{id}: {action} on {reference:?}");
            }
            _ => panic!("{id}: {action} is none of its code's"),
        }
        granted.insert(action);
    }
    let used: BTreeSet<String> = [
        "dynamodb:getitem",
        "dynamodb:query",
        "dynamodb:putitem",
        "secretsmanager:getsecretvalue",
        "sqs:receivemessage",
        "sqs:deletemessage",
        "sqs:getqueueattributes",
        "sqs:sendmessage",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(granted, used, "{id}: actions (template left, code right)");
    let text = std::fs::read_to_string(repo_root().join("infra/template.yaml")).unwrap();
    assert!(
        !text.contains("WEBHOOK_ALLOW_LOOPBACK"),
        "the template never lets webhooks reach loopback"
    );
}
